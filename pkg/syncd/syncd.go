// Package syncd runs IPVS's connection-sync daemons for a data plane that
// is not the kernel's IPVS: a master that multicasts the director's flows
// and a backup that installs its master's, on IPVS's own wire protocol
// (package ipvssync), so that either side may be a kernel IPVS director.
//
// The master reads the flow table; it is not called per packet. Each pass
// over the table (every PollInterval, or longer for a table whose reading
// takes longer) sends at once what a packet would have made the kernel
// send at once:
//
//   - a flow seen for the first time in a state IPVS syncs (TCP
//     ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT, TIME_WAIT; any UDP flow;
//     every persistence template), or whose state or real changed;
//   - a flow that has seen packets since it was last sent, once an eighth
//     of its timeout has passed since then (at least RefreshFloor): the
//     backup restarts the entry's timer with the full timeout on every
//     record, so its copy outlives the master's by at most that eighth
//     (IPVS's sync_refresh_period, set by the flow's timeout).
//
// Closing IPVS's holes, on the same wire: a backup that starts asks its
// master for every open flow (a bulk dump), and the master answers by
// sending its whole table as ordinary records; the request and the
// end-of-dump marker are version 1 messages announcing no records with a
// tag after the header, which a kernel backup accepts and ignores
// (ip_vs_process_message reads nr_conns records and nothing after them).
package syncd

import (
	"fmt"
	"time"

	"github.com/xlbproject/xlb/pkg/ipvssync"
)

// Record is one flow or template of the local table, as the master sends
// it, with when its last packet was seen (any monotonic clock: only
// changes are compared).
type Record struct {
	ipvssync.Conn
	Seen time.Duration
}

// Installed is what a backup made of a message's records.
type Installed struct {
	Installed int // created or updated
	Stale     int // ignored as the kernel ignores them (INACTIVE, to another real)
	Skipped   int // no such service or real here
	Reason    string
}

// Table is the data plane's side: its flows, and installing a master's.
type Table interface {
	// SyncRecords calls each for every flow and template this director
	// holds and would sync, leaving out those it installed from a master
	// and has not forwarded since.
	SyncRecords(each func(Record)) error
	// SyncInstall installs the records of one message, as IPVS's backup
	// does.
	SyncInstall(conns []ipvssync.Conn) (Installed, error)
}

// Timing of the master; variables for tests.
var (
	// PollInterval is the shortest time between two reads of the table.
	PollInterval = 100 * time.Millisecond
	// RefreshFloor is the shortest time after which a busy flow is sent
	// again.
	RefreshFloor = 2 * time.Second
	// DumpRetry is how often a starting backup asks again for a bulk
	// dump while none has come, DumpTries times at most.
	DumpRetry = time.Second
	DumpTries = 5
)

// The tags of the extension messages, after a version 1 header announcing
// no records.
var (
	tagDumpRequest = []byte("xlb-sync-dumpreq")
	tagDumpDone    = []byte("xlb-sync-dumped\x00")
)

// extension is a version 1 header with no records, followed by tag.
func extension(syncID uint8, tag []byte) []byte {
	b := make([]byte, 8, 8+len(tag))
	b[1] = syncID
	b[2], b[3] = byte((8+len(tag))>>8), byte(8+len(tag))
	b[5] = ipvssync.Version1
	return append(b, tag...)
}

// extensionTag is the tag of an extension message, nil for any other.
func extensionTag(b []byte) []byte {
	if len(b) != 8+16 || b[0] != 0 || b[4] != 0 || b[5] != ipvssync.Version1 || b[6] != 0 || b[7] != 0 {
		return nil
	}
	return b[8:]
}

// recKey names a record as the kernel's backup finds it: protocol, client,
// virtual service, and whether it is a template.
type recKey struct {
	proto    uint8
	template bool
	client   [18]byte
	virtual  [18]byte
}

func keyOf(c *ipvssync.Conn) recKey {
	k := recKey{proto: c.Protocol, template: c.IsTemplate()}
	a, v := c.Client.Addr().As16(), c.Virtual.Addr().As16()
	copy(k.client[:], a[:])
	k.client[16], k.client[17] = byte(c.Client.Port()>>8), byte(c.Client.Port())
	copy(k.virtual[:], v[:])
	k.virtual[16], k.virtual[17] = byte(c.Virtual.Port()>>8), byte(c.Virtual.Port())
	return k
}

// sentAs is what the master last sent of a record, and when.
type sentAs struct {
	state uint16
	dest  [18]byte
	flags uint32
	seen  time.Duration
	at    time.Time
	pass  uint64 // the last pass that saw it
}

func destOf(c *ipvssync.Conn) [18]byte {
	var d [18]byte
	a := c.Dest.Addr().As16()
	copy(d[:], a[:])
	d[16], d[17] = byte(c.Dest.Port()>>8), byte(c.Dest.Port())
	return d
}

// refreshAfter is when a busy record is sent again: an eighth of its
// timeout, at least RefreshFloor.
func refreshAfter(c *ipvssync.Conn) time.Duration {
	return max(c.Timeout/8, RefreshFloor)
}

// Stats count what the daemons did since they started.
type Stats struct {
	// Master.
	SentMessages, SentRecords uint64
	SendErrors                uint64
	// Unsendable: records the table gave that no message can carry
	// (ipvssync.Conn.Check), left out rather than failing the pass.
	Unsendable uint64
	Dumps      uint64 // bulk dumps sent on request
	LastPass   time.Duration
	// Backup.
	ReceivedMessages, ReceivedRecords uint64
	Installed, Stale, Skipped         uint64
	Dropped                           uint64 // records the kernel would not install
	OtherSyncID                       uint64 // messages for another syncid
	Malformed                         uint64 // datagrams that are no sync message
	InstallErrors                     uint64
	LastReceived                      time.Time
	// DumpRequested and DumpReceived are when this backup asked for a
	// bulk dump and when one ended (zero: not yet).
	DumpRequested, DumpReceived time.Time
}

func (s Stats) String() string {
	return fmt.Sprintf("sent %d records in %d messages; received %d records in %d messages, %d installed, %d stale, %d skipped",
		s.SentRecords, s.SentMessages, s.ReceivedRecords, s.ReceivedMessages, s.Installed, s.Stale, s.Skipped)
}
