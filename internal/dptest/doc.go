// Package dptest is one behaviour suite for every implementation of
// dataplane.Dataplane: the XDP data plane (pkg/dataplane/xdp) and the IPVS one
// (pkg/dataplane/ipvs) each run it from their own tests, with a Factory that opens
// them on a DR topology from internal/testutil.
//
// Each behaviour checks what an ipvsadm user would check, with real TCP
// connections from the client namespace, through the director, to HTTP
// servers in the reals that answer with their names: which real each new
// connection gets, against Model, IPVS's schedulers run in Go (pkg/sched);
// weight changes, quiescing, removing and adding reals; persistence; Stats
// and Conns; timeouts. Where the two data planes differ on purpose, the
// behaviour says so by DataPlane.Name, with the reason.
//
// The suite needs root, network namespaces, and for IPVS a kernel with
// IP_VS: on a development host without it, run the IPVS side with
// `make vmtest KERNEL=6.1 PKGS=./pkg/dataplane/ipvs/ TESTFLAGS=-test.run=TestBehaviour`.
package dptest
