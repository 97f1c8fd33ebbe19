package xdp

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Go types bpf2go generated must have the sizes the maps were made
// with, and the Go-side limits must be the compiled-in ones.
func TestGeneratedTypesMatchMaps(t *testing.T) {
	spec, err := loadXlb()
	require.NoError(t, err)
	for _, c := range []struct {
		m          string
		key, value uintptr
	}{
		{xlbMapSvcMap, unsafe.Sizeof(xlbSvcKey{}), unsafe.Sizeof(uint32(0))},
		{xlbMapSvcs, 4, unsafe.Sizeof(xlbSvc{})},
		{xlbMapReals, 4, unsafe.Sizeof(xlbReal{})},
		{xlbMapConns, unsafe.Sizeof(xlbConnKey{}), unsafe.Sizeof(xlbConn{})},
		{xlbMapSvcRetired, 4, unsafe.Sizeof(xlbCounters{})},
		{xlbMapRealStats, 4, unsafe.Sizeof(xlbCounters{})},
		{xlbMapStats, unsafe.Sizeof(xlbXlbStat(0)), 8},
		{xlbMapSchedTab, 4, 4},
		{xlbMapSchedCursor, 4, 8},
	} {
		m := spec.Maps[c.m]
		require.NotNil(t, m, c.m)
		assert.EqualValues(t, c.key, m.KeySize, "%s key", c.m)
		assert.EqualValues(t, c.value, m.ValueSize, "%s value", c.m)
	}
	assert.EqualValues(t, maxServices, spec.Maps[xlbMapSvcRetired].MaxEntries)
	assert.EqualValues(t, 2*maxServices, spec.Maps[xlbMapSvcs].MaxEntries)
	assert.EqualValues(t, maxReals, spec.Maps[xlbMapReals].MaxEntries)
	assert.EqualValues(t, 2*maxServices*schedSlots, spec.Maps[xlbMapSchedTab].MaxEntries)
	assert.EqualValues(t, xlbXlbStatXLB_STAT_MAX, spec.Maps[xlbMapStats].MaxEntries)
	assert.EqualValues(t, vipFilterSize, spec.Maps[xlbMapVipFilter].MaxEntries)
	assert.EqualValues(t, maxIfaces, spec.Maps[xlbMapTxPorts].MaxEntries)
}
