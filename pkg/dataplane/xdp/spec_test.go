package xdp

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/sched"
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
	lim := limitsOf(spec)
	assert.EqualValues(t, 2*lim.services, spec.Maps[xlbMapSvcs].MaxEntries)
	assert.EqualValues(t, 2*lim.services, spec.Maps[xlbMapSchedCursor].MaxEntries)
	assert.EqualValues(t, lim.services, spec.Maps[xlbMapSvcMap].MaxEntries)
	assert.EqualValues(t, lim.services, spec.Maps[xlbMapVips].MaxEntries, "a VIP per service at most")
	assert.Equal(t, 4096, lim.services, "the default holds real deployments")
	assert.Equal(t, 65536, lim.reals)
	// Room for reasons a later build adds: its maps must take over these.
	assert.EqualValues(t, 64, spec.Maps[xlbMapStats].MaxEntries)
	assert.Less(t, int(xlbXlbStatXLB_STAT_MAX), 64)
	assert.Equal(t, lim.filter, 1<<lim.filterBits, "the address filters are a power of two")
	assert.EqualValues(t, lim.filter, spec.Maps[xlbMapNatSrcFilter].MaxEntries)
	for _, m := range []string{xlbMapRealStats, xlbMapRealConns, xlbMapSweepCounts, xlbMapConnAdjust, xlbMapTunnels} {
		assert.EqualValues(t, lim.reals, spec.Maps[m].MaxEntries, m)
	}

	// sizeServices and sizeReals resize every map that holds services or
	// reals alike.
	sizeServices(spec, 1000)
	sizeReals(spec, 9000)
	lim = limitsOf(spec)
	assert.Equal(t, 1000, lim.services)
	assert.EqualValues(t, 2000, spec.Maps[xlbMapSvcs].MaxEntries)
	assert.EqualValues(t, 1000, spec.Maps[xlbMapVips].MaxEntries)
	for _, m := range []string{xlbMapReals, xlbMapRealStats, xlbMapRealConns, xlbMapSweepCounts, xlbMapConnAdjust} {
		assert.EqualValues(t, 9000, spec.Maps[m].MaxEntries, m)
	}
}

// The program's enum xlb_sched and pkg/sched's registry name the same
// schedulers: each one the registry says XDP computes has a picker value,
// and each picker is a scheduler XDP is said to compute.
func TestSchedulerEnumMatchesRegistry(t *testing.T) {
	var inXDP []string
	for _, s := range sched.Schedulers {
		if sched.InXDP(&s) {
			inXDP = append(inXDP, s.Name)
		}
	}
	var ids []string
	for name := range schedID {
		ids = append(ids, name)
	}
	assert.ElementsMatch(t, inXDP, ids)
	assert.ElementsMatch(t, inXDP, Caps.Schedulers)
}
