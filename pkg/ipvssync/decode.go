package ipvssync

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// UnmarshalBinary decodes one sync datagram, the UDP payload as received,
// the way the kernel's backup processes it (ip_vs_process_message):
//
//  1. Shorter than 4 bytes, or a header size other than len(b): the kernel
//     ignores the datagram. UnmarshalBinary returns ErrShort or ErrSize and
//     leaves m empty. (A receiver reading into a buffer of its own
//     sync_maxlen gets a longer datagram cut short, and so ErrSize, as the
//     kernel's backup does.)
//  2. The kernel's syncid filter comes next; it is the caller's.
//  3. Version 1 if the header has version 1, reserved 0 and spare 0;
//     anything else is version 0. A message of 4 to 7 bytes decodes as
//     version 0: the kernel reads the missing header bytes from whatever
//     its buffer held before, but installs nothing from so short a message
//     either way.
//  4. The records, in order: m.Conns gets each one the kernel installs,
//     m.Dropped each one it skips and, if it stops early, where. Nothing
//     else is an error: the kernel installs the records before the one it
//     stops at.
//
// Version 1, per record (ip_vs_process_message, ip_vs_proc_sync_conn):
//
//   - DropRest, ErrTruncated: fewer than 36 bytes left (the kernel checks
//     the IPv4 size even for IPv6), a record length reaching past the end,
//     or one shorter than the fixed part (36 bytes, 72 for IPv6).
//   - DropRest, ErrRecordVersion: a non-zero version in ver_size's top bits.
//   - DropRest, ErrRecordType: a type byte that is even and not 0. The
//     kernel tests bit 0 alone, so any odd type is an IPv6 record.
//   - DropRest, ErrOption: an option header cut by the record's end; an
//     option length of 0 or past the record's end; seq data of other than
//     24 bytes; a PE name over 16 bytes; seq data, PE data or PE name twice.
//   - SkipRecord, ErrMandatoryOption: an unknown option type without the
//     0x40 (IPVS_OPT_F_PARAM) bit, when it is met: options after it are not
//     read. An unknown type with the bit is ignored, and a known type with
//     it is that known type.
//   - SkipRecord, ErrProtocol or ErrState: a record other than a template
//     for a protocol IPVS does not know, or in a state at or past the
//     protocol's number of states. Template states are not checked.
//   - SkipRecord, ErrPE: PE data without a PE name. A name without data is
//     accepted and ignored (and not kept in the Conn).
//
// (A kernel built without CONFIG_IP_VS_IPV6 would skip IPv6 records too;
// distribution kernels have it.)
//
// The next record starts at the record's length rounded up to 4; padding
// bytes are not checked, nor anything after the last announced record.
//
// Version 0, per record (ip_vs_process_message_v0): DropRest, ErrTruncated
// if the 24-byte record, or with InSeq or OutSeq the 24 bytes of sequence
// options after it, is cut short; SkipRecord with ErrProtocol or ErrState as
// in version 1. The sequence options are read little-endian: the kernel
// sends them in its own byte order.
//
// Conn.Flags are the wire flags; BackupFlags gives what the kernel keeps.
func (m *Message) UnmarshalBinary(b []byte) error {
	*m = Message{}
	if len(b) < headerLenV0 {
		return fmt.Errorf("unmarshal ipvs sync message (%d bytes): %w: want at least %d", len(b), ErrShort, headerLenV0)
	}
	if size := int(binary.BigEndian.Uint16(b[2:4])); size != len(b) {
		return fmt.Errorf("unmarshal ipvs sync message (%d bytes): %w: header says %d", len(b), ErrSize, size)
	}
	m.SyncID = b[1]
	if len(b) >= headerLenV1 && b[0] == 0 && b[5] == Version1 && b[6] == 0 && b[7] == 0 {
		m.Version = Version1
		m.decodeV1(b)
	} else {
		m.Version = Version0
		m.decodeV0(b)
	}
	return nil
}

func (m *Message) decodeV1(b []byte) {
	n := int(b[4])
	next := headerLenV1
	for i := range n {
		off := next
		if off+recordLen4 > len(b) {
			m.drop(i, n, off, DropRest, fmt.Errorf("%w: %d bytes left, a record needs at least %d",
				ErrTruncated, max(len(b)-off, 0), recordLen4))
			return
		}
		verSize := binary.BigEndian.Uint16(b[off+2:])
		size := int(verSize & sverMask)
		if off+size > len(b) {
			m.drop(i, n, off, DropRest, fmt.Errorf("%w: record length %d, %d bytes left",
				ErrTruncated, size, len(b)-off))
			return
		}
		if v := verSize >> sverShift; v != 0 {
			// The protocol note says the whole buffer is dropped; the
			// kernel returns here having installed the records before.
			m.drop(i, n, off, DropRest, fmt.Errorf("%w: %d", ErrRecordVersion, v))
			return
		}
		c, kind, err := decodeConnV1(b, off, off+size)
		switch kind {
		case DropRest:
			m.drop(i, n, off, kind, err)
			return
		case SkipRecord:
			m.drop(i, n, off, kind, err)
		default:
			m.Conns = append(m.Conns, c)
		}
		next = off + align4(size)
	}
}

// decodeConnV1 decodes the record b[off:end]; b holds at least 36 bytes
// from off. A zero kind means the kernel installs the record.
func decodeConnV1(b []byte, off, end int) (Conn, DropKind, error) {
	// The protocol note says a type other than 0 and STYPE_F_INET6 ends
	// parsing; the kernel tests the bit alone, so any odd type is IPv6.
	base := recordLen4
	if typ := b[off]; typ&typeInet6 != 0 {
		base = recordLen6
	} else if typ != 0 {
		return Conn{}, DropRest, fmt.Errorf("%w: %d", ErrRecordType, typ)
	}
	if off+base > end {
		return Conn{}, DropRest, fmt.Errorf("%w: record length %d, the fixed part is %d", ErrTruncated, end-off, base)
	}

	var (
		seq            *SeqOptions
		peData, peName []byte
		local          netip.AddrPort
	)
	for p := off + base; p < end; {
		if p+2 > end {
			return Conn{}, DropRest, fmt.Errorf("%w: option header cut by the record's end at offset %d", ErrOption, p)
		}
		typ, l := b[p], int(b[p+1])
		p += 2
		if l == 0 || p+l > end {
			return Conn{}, DropRest, fmt.Errorf("%w: option type %d length %d, %d bytes left in the record", ErrOption, typ, l, end-p)
		}
		// A repeated option is an error like a malformed one
		// (ip_vs_proc_seqopt, ip_vs_proc_str return -EINVAL): the kernel
		// drops the rest of the message, it does not skip the record.
		switch typ &^ optFParam {
		case optSeqData:
			if l != seqDataLen {
				return Conn{}, DropRest, fmt.Errorf("%w: seq data length %d, want %d", ErrOption, l, seqDataLen)
			}
			if seq != nil {
				return Conn{}, DropRest, fmt.Errorf("%w: seq data twice", ErrOption)
			}
			seq = decodeSeq(b[p:p+l], binary.BigEndian)
		case optPEData:
			if peData != nil {
				return Conn{}, DropRest, fmt.Errorf("%w: pe data twice", ErrOption)
			}
			peData = b[p : p+l]
		case optPEName:
			if l > MaxPENameLen {
				return Conn{}, DropRest, fmt.Errorf("%w: pe name length %d, at most %d", ErrOption, l, MaxPENameLen)
			}
			if peName != nil {
				return Conn{}, DropRest, fmt.Errorf("%w: pe name twice", ErrOption)
			}
			peName = b[p : p+l]
		case optLocal:
			// xlb's FULLNAT local address. The kernel skips it (it
			// is sent with the optional bit); so is one of a length
			// other than IPv4's or IPv6's, or a second one, here: the
			// record stands without it. Without the bit it is
			// mandatory and unknown to the kernel, which skips the
			// record.
			if typ&optFParam == 0 {
				return Conn{}, SkipRecord, fmt.Errorf("%w: type %d", ErrMandatoryOption, typ)
			}
			if (l == localLenV4 || l == localLenV6) && !local.IsValid() {
				local = netip.AddrPortFrom(addrFrom(b[p+2:p+l]), binary.BigEndian.Uint16(b[p:]))
			}
		default:
			if typ&optFParam == 0 {
				return Conn{}, SkipRecord, fmt.Errorf("%w: type %d", ErrMandatoryOption, typ)
			}
		}
		p += l
	}

	c := Conn{
		Protocol: b[off+1],
		Flags:    binary.BigEndian.Uint32(b[off+4:]),
		State:    binary.BigEndian.Uint16(b[off+8:]),
		FWMark:   binary.BigEndian.Uint32(b[off+16:]),
		Timeout:  time.Duration(binary.BigEndian.Uint32(b[off+20:])) * time.Second,
		Seq:      seq,
		Local:    local,
	}
	if err := checkState(c.Protocol, c.Flags, c.State); err != nil {
		return Conn{}, SkipRecord, err
	}
	if peData != nil {
		if peName == nil {
			return Conn{}, SkipRecord, fmt.Errorf("%w: pe data without pe name", ErrPE)
		}
		c.PEData, c.PEName = bytes.Clone(peData), string(peName)
	}
	alen := 4
	if base == recordLen6 {
		alen = 16
	}
	a := off + 24
	c.Client = netip.AddrPortFrom(addrFrom(b[a:a+alen]), binary.BigEndian.Uint16(b[off+10:]))
	c.Virtual = netip.AddrPortFrom(addrFrom(b[a+alen:a+2*alen]), binary.BigEndian.Uint16(b[off+12:]))
	c.Dest = netip.AddrPortFrom(addrFrom(b[a+2*alen:a+3*alen]), binary.BigEndian.Uint16(b[off+14:]))
	return c, 0, nil
}

func (m *Message) decodeV0(b []byte) {
	n := int(b[0])
	next := headerLenV0
	for i := range n {
		off := next
		if off+recordLenV0 > len(b) {
			m.drop(i, n, off, DropRest, fmt.Errorf("%w: %d bytes left, a version 0 record is %d",
				ErrTruncated, max(len(b)-off, 0), recordLenV0))
			return
		}
		r := b[off : off+recordLenV0]
		c := Conn{
			Protocol: r[1],
			Client:   netip.AddrPortFrom(addrFrom(r[8:12]), binary.BigEndian.Uint16(r[2:])),
			Virtual:  netip.AddrPortFrom(addrFrom(r[12:16]), binary.BigEndian.Uint16(r[4:])),
			Dest:     netip.AddrPortFrom(addrFrom(r[16:20]), binary.BigEndian.Uint16(r[6:])),
			Flags:    uint32(binary.BigEndian.Uint16(r[20:])),
			State:    binary.BigEndian.Uint16(r[22:]),
		}
		next = off + recordLenV0
		if c.Flags&SeqMask != 0 {
			if next+seqDataLen > len(b) {
				m.drop(i, n, off, DropRest, fmt.Errorf("%w: flags 0x%04x announce seq options, %d bytes left",
					ErrTruncated, c.Flags, len(b)-next))
				return
			}
			c.Seq = decodeSeq(b[next:next+seqDataLen], binary.LittleEndian)
			next += seqDataLen
		}
		if err := checkState(c.Protocol, c.Flags, c.State); err != nil {
			m.drop(i, n, off, SkipRecord, err)
			continue
		}
		m.Conns = append(m.Conns, c)
	}
}

// checkState is the backup's check of a record's protocol and state; it
// leaves templates alone.
func checkState(proto uint8, flags uint32, state uint16) error {
	if flags&Template != 0 {
		return nil
	}
	pr, ok := protocols[proto]
	if !ok {
		return fmt.Errorf("%w: protocol %d", ErrProtocol, proto)
	}
	if state >= pr.numStates {
		return fmt.Errorf("%w: %s state %d, %s has %d", ErrState, pr.name, state, pr.name, pr.numStates)
	}
	return nil
}

func (m *Message) drop(i, n, off int, kind DropKind, err error) {
	count := 1
	if kind == DropRest {
		count = n - i
	}
	m.Dropped = append(m.Dropped, Drop{
		Index: i,
		Count: count,
		Kind:  kind,
		Err:   fmt.Errorf("record %d at offset %d (%s): %w", i, off, kind, err),
	})
}

func decodeSeq(b []byte, order binary.ByteOrder) *SeqOptions {
	return &SeqOptions{
		In:  Seq{order.Uint32(b[0:]), order.Uint32(b[4:]), order.Uint32(b[8:])},
		Out: Seq{order.Uint32(b[12:]), order.Uint32(b[16:]), order.Uint32(b[20:])},
	}
}

func addrFrom(b []byte) netip.Addr {
	if len(b) == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	return netip.AddrFrom16([16]byte(b))
}
