package ipvssync

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Transport constants, for the socket layer built on this package.
var (
	// Group is IP_VS_SYNC_GROUP, the default multicast group.
	Group = netip.AddrFrom4([4]byte{224, 0, 0, 81})
)

const (
	// Port is IP_VS_SYNC_PORT; sync thread id sends to and listens on
	// Port+id.
	Port = 8848

	// DefaultMaxLen is the master's default sync_maxlen: 1500 minus the
	// IPv4 and UDP headers, whatever the interface MTU (1452 with an IPv6
	// group).
	DefaultMaxLen = 1500 - 20 - 8
)

// Protocol versions, Message.Version.
const (
	Version0 = 0 // the original format, IPv4 only (sync_version=0)
	Version1 = 1 // SYNC_PROTO_VER
)

// Limits of the wire format.
const (
	// MaxConns is the most records one message can announce: nr_conns is
	// one byte.
	MaxConns = 255
	// MaxPENameLen is IP_VS_PENAME_MAXLEN; the kernel's receiver drops the
	// rest of a message at a longer name.
	MaxPENameLen = 16
	// MaxPEDataLen is IP_VS_PEDATA_MAXLEN, also the most an option's length
	// byte can say.
	MaxPEDataLen = 255
)

// Connection flags, IP_VS_CONN_F_* from include/uapi/linux/ip_vs.h. The
// forwarding method is the value under FwdMask (Masq is 0), not a bit.
const (
	FwdMask   uint32 = 0x0007
	Masq      uint32 = 0x0000 // NAT
	LocalNode uint32 = 0x0001
	Tunnel    uint32 = 0x0002 // IPIP (or GUE, GRE)
	DRoute    uint32 = 0x0003 // direct routing
	Bypass    uint32 = 0x0004 // cache bypass

	Sync      uint32 = 0x0020 // created by sync (set by the receiver)
	Hashed    uint32 = 0x0040 // in the conn table; the kernel never sends it
	NoOutput  uint32 = 0x0080
	Inactive  uint32 = 0x0100 // not established; counts as InActConn
	OutSeq    uint32 = 0x0200 // output sequence numbers need adjusting
	InSeq     uint32 = 0x0400 // input sequence numbers need adjusting
	SeqMask          = OutSeq | InSeq
	NoCPort   uint32 = 0x0800 // client port not known yet (FTP data)
	Template  uint32 = 0x1000 // persistence template, not a connection
	OnePacket uint32 = 0x2000 // one-packet scheduling; the kernel syncs none
	NFCT      uint32 = 1 << 16

	// BackupMask is the flags a backup takes from a version 1 record when
	// it creates the connection (IP_VS_CONN_F_BACKUP_MASK).
	BackupMask = FwdMask | NoOutput | Inactive | SeqMask | NoCPort | Template
	// BackupUpdMask is the flags a record may change on a connection the
	// backup already has (IP_VS_CONN_F_BACKUP_UPD_MASK).
	BackupUpdMask = Inactive | SeqMask
)

// TCP states, IP_VS_TCP_S_* from include/net/ip_vs.h, as ipvsadm -Lnc names
// them.
const (
	TCPNone        uint16 = iota // NONE
	TCPEstablished               // ESTABLISHED
	TCPSynSent                   // SYN_SENT
	TCPSynRecv                   // SYN_RECV
	TCPFinWait                   // FIN_WAIT
	TCPTimeWait                  // TIME_WAIT
	TCPClose                     // CLOSE
	TCPCloseWait                 // CLOSE_WAIT
	TCPLastAck                   // LAST_ACK
	TCPListen                    // LISTEN
	TCPSynAck                    // SYNACK
)

// UDPNormal is the only UDP state (IP_VS_UDP_S_NORMAL); AH and ESP have the
// same single state.
const UDPNormal uint16 = 0

// Template states, IP_VS_CTPL_S_*: a persistence template is ASSURED once a
// connection it controls has been established.
const (
	TemplateNone    uint16 = 0
	TemplateAssured uint16 = 1
)

// IP protocol numbers of the protocols IPVS balances.
const (
	ProtocolTCP  uint8 = 6
	ProtocolUDP  uint8 = 17
	ProtocolESP  uint8 = 50
	ProtocolAH   uint8 = 51
	ProtocolSCTP uint8 = 132
)

// protocols is what ip_vs_proto_get finds on a kernel built with every
// CONFIG_IP_VS_PROTO_* (Debian's and most distributions'), with each
// protocol's num_states. A backup skips a record of any other protocol, or
// in a state at or past num_states, unless it is a template.
var protocols = map[uint8]struct {
	name      string
	numStates uint16
}{
	ProtocolTCP:  {"TCP", TCPSynAck + 1},
	ProtocolUDP:  {"UDP", 1},
	ProtocolSCTP: {"SCTP", 14}, // IP_VS_SCTP_S_NONE .. IP_VS_SCTP_S_CLOSED
	ProtocolAH:   {"AH", 1},
	ProtocolESP:  {"ESP", 1},
}

// Message is one sync datagram: a header and up to MaxConns connection
// records, all from one master thread.
type Message struct {
	// SyncID identifies the master's LVS cluster. A backup with a non-zero
	// syncid of its own ignores messages with another one; that filter is
	// the receiver's, this package does not apply it.
	SyncID uint8

	// Version is Version0 or Version1. It selects the encoding; decoding
	// sets it from the header the way the kernel tells them apart.
	Version int

	// Conns are the records, in wire order. After UnmarshalBinary they are
	// exactly the records the kernel's backup passes on to install
	// (ip_vs_proc_conn): those it skipped or dropped are in Dropped.
	Conns []Conn

	// Dropped lists the records of a decoded message that the kernel's
	// backup would not install, in wire order: any number of SkipRecord
	// entries, then at most one DropRest. It is set by UnmarshalBinary and
	// ignored by MarshalBinary.
	Dropped []Drop
}

// Conn is one connection (or persistence template) record.
type Conn struct {
	Protocol uint8

	// Flags are the IP_VS_CONN_F_* bits as on the wire: 32 bits in
	// version 1, 16 in version 0. The kernel sends cp->flags without
	// Hashed. What a backup makes of them is BackupFlags.
	Flags uint32

	// State is a protocol state (TCPEstablished, ...) or, with Template,
	// a template state.
	State uint16

	// Client, Virtual and Dest are the client, the virtual service and the
	// real server ("source", "virtual", "destination" in ipvsadm -Lnc),
	// all three of one family: the record is IPv6 if they are. A
	// template's Client port is 0, as is the Virtual port of a
	// port-zero persistent service.
	Client, Virtual, Dest netip.AddrPort

	// FWMark is the firewall mark of an fwmark service (version 1 only).
	FWMark uint32

	// Timeout is the full timeout of the connection's current state as the
	// master has it (cp->timeout), not the time left: the backup restarts
	// its timer with it on every record. Whole seconds on the wire; a
	// fraction is truncated as the kernel's cp->timeout/HZ truncates. Zero
	// (always so in version 0) makes the backup use its own timeout table,
	// or 3 minutes for templates.
	Timeout time.Duration

	// Seq is the IPVS_OPT_SEQ_DATA option: the sequence number deltas of a
	// NAT connection whose payload a helper (FTP) resizes. The kernel sends
	// it exactly when Flags has InSeq or OutSeq, and the encoder refuses
	// anything else; a received record may have either without the other,
	// and the kernel's backup takes it as it is.
	Seq *SeqOptions

	// PEName and PEData are the persistence engine's name (IPVS_OPT_PE_NAME,
	// at most MaxPENameLen bytes, "sip" being the only engine in Linux) and
	// its data (IPVS_OPT_PE_DATA, 1..MaxPEDataLen bytes, for sip the
	// Call-ID). They travel together: the kernel sends the name only with
	// data and skips a record with data but no name. A decoded name without
	// data is discarded, as the kernel ignores it. A receiver must also
	// skip a record whose engine it does not have, as the kernel does.
	PEName string
	PEData []byte

	// Local is a FULLNAT connection's local address and port: the
	// director's source toward the real, which the real answers. IPVS
	// has no FULLNAT and no field for it; xlb sends it in an option of
	// its own (type 0x58, the optional bit 0x40 set), which a kernel
	// backup skips, installing the rest of the record as it would any
	// other. Version 1 only. Its family is its own: a NAT64 flow has an
	// IPv6 client and VIP, an IPv4 local address, and an IPv4 real,
	// carried IPv4-mapped in the IPv6 record (a NAT46 flow the reverse:
	// its IPv4 client and VIP IPv4-mapped).
	Local netip.AddrPort
}

// SeqOptions is struct ip_vs_sync_conn_options: the sequence adjustments in
// each direction.
type SeqOptions struct {
	In, Out Seq
}

// Seq is struct ip_vs_seq.
type Seq struct {
	InitSeq       uint32 // add Delta from this sequence number on
	Delta         uint32 // two's complement: a helper may shrink the payload
	PreviousDelta uint32 // Delta before the last resized packet
}

// IsTemplate reports whether c is a persistence template.
func (c Conn) IsTemplate() bool { return c.Flags&Template != 0 }

// Is6 reports whether c is an IPv6 record (all its addresses are IPv6, an
// IPv4-mapped one included).
func (c Conn) Is6() bool { return c.Client.Addr().Is6() }

// String names c the way ipvsadm -Lnc lists it: protocol, client, virtual
// service, real server.
func (c Conn) String() string {
	return fmt.Sprintf("%s %s -> %s -> %s", protocolName(c.Protocol), c.Client, c.Virtual, c.Dest)
}

func protocolName(p uint8) string {
	if pr, ok := protocols[p]; ok {
		return pr.name
	}
	return fmt.Sprintf("proto %d", p)
}

// BackupFlags returns the flags a kernel backup gives the connection it
// creates from a record of the given version with wire flags: version 1
// keeps BackupMask and adds Sync (ip_vs_proc_sync_conn); version 0 keeps
// everything but Hashed and adds Sync (ip_vs_process_message_v0). A record
// for a connection the backup already has changes only BackupUpdMask. The
// forwarding method is then replaced by the backup's own real-server
// configuration when the connection is bound to it.
func BackupFlags(version int, wire uint32) uint32 {
	if version == Version0 {
		return (wire | Sync) &^ Hashed
	}
	return wire&BackupMask | Sync
}

// DropKind says how much of a message the kernel's backup loses at a
// record it does not accept.
type DropKind int

const (
	// SkipRecord: the backup ignores this record and goes on with the next
	// (ip_vs_proc_sync_conn returned a positive code, or the version 0
	// loop continued).
	SkipRecord DropKind = iota + 1
	// DropRest: the backup stops at this record ("BACKUP, Dropping
	// buffer"): it and every later record are lost, earlier ones are
	// already installed.
	DropRest
)

func (k DropKind) String() string {
	switch k {
	case SkipRecord:
		return "skip record"
	case DropRest:
		return "drop rest"
	}
	return fmt.Sprintf("DropKind(%d)", int(k))
}

// Drop is a record, or the tail of a message from a record on, that the
// kernel's backup would not install.
type Drop struct {
	Index int // the record's position in the message, from 0
	Count int // records lost: 1 for SkipRecord, nr_conns-Index for DropRest
	Kind  DropKind
	Err   error // why, naming the record and its offset; wraps an Err* value
}

// Errors, always wrapped with what was wrong and where; test with errors.Is.
var (
	// Whole datagram (UnmarshalBinary fails; the kernel installs nothing).
	ErrShort = errors.New("ipvs sync message shorter than a header")
	ErrSize  = errors.New("ipvs sync header size is not the datagram length")

	// Why a record is lost (Drop.Err). The encoder refuses a Conn with
	// ErrProtocol, ErrState or ErrPE for the same reasons.
	ErrTruncated       = errors.New("record overruns the message")
	ErrRecordVersion   = errors.New("unknown record version")
	ErrRecordType      = errors.New("unknown record type")
	ErrOption          = errors.New("malformed option")
	ErrMandatoryOption = errors.New("unknown mandatory option")
	ErrProtocol        = errors.New("protocol unknown to ipvs")
	ErrState           = errors.New("state out of range for the protocol")
	ErrPE              = errors.New("bad persistence engine option")

	// Encoder only.
	ErrVersion = errors.New("bad ipvs sync version")
	ErrAddr    = errors.New("bad address")
	ErrSeq     = errors.New("sequence option does not match the seq flags")
	ErrTimeout = errors.New("bad timeout")
	ErrTooMany = errors.New("too many conns for one message")
	ErrTooLong = errors.New("message too long")
	ErrMaxLen  = errors.New("bad sync_maxlen")
)
