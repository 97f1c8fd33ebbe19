// Package testutil builds the network-namespace topologies xlb's tests and
// demo run on: named namespaces joined by veth pairs on a bridge, real HTTP
// servers inside them, and clients that dial from inside a namespace.
// Everything made is removed by the returned cleanup (registered on the test
// with t.Cleanup when a testing.TB is given).
package testutil
