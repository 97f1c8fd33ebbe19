package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"

	"github.com/xlbproject/xlb/pkg/dataplane"
)

// The IPVS generic-netlink commands and attributes of its sync daemons
// (include/uapi/linux/ip_vs.h), which the netlink client xlb uses for
// services does not cover.
const (
	genlName    = "IPVS"
	genlVersion = 1

	cmdNewDaemon = 9
	cmdDelDaemon = 10
	cmdGetDaemon = 11

	cmdAttrDaemon = 3

	daemonAttrState       = 1 // u32: 1 master, 2 backup
	daemonAttrMcastIfn    = 2 // string
	daemonAttrSyncID      = 3 // u32
	daemonAttrSyncMaxlen  = 4 // u16
	daemonAttrMcastGroup  = 5 // in_addr
	daemonAttrMcastGroup6 = 6 // in6_addr
	daemonAttrMcastPort   = 7 // u16
	daemonAttrMcastTTL    = 8 // u8

	stateMaster = 1
	stateBackup = 2
)

var _ dataplane.SyncDaemons = (*Dataplane)(nil)

// genl runs fn with a generic-netlink connection to IPVS in the data
// plane's namespace.
func (v *Dataplane) genl(fn func(c *genetlink.Conn, family uint16) error) error {
	return inNS(v.opts.NetNS, func() error {
		c, err := genetlink.Dial(nil)
		if err != nil {
			return fmt.Errorf("generic netlink: %w", err)
		}
		defer c.Close()
		f, err := c.GetFamily(genlName)
		if err != nil {
			return fmt.Errorf("IPVS generic netlink family: %w", err)
		}
		return fn(c, f.ID)
	})
}

// StartDaemon implements dataplane.SyncDaemons: IPVS_CMD_NEW_DAEMON, as
// ipvsadm --start-daemon sends it.
func (v *Dataplane) StartDaemon(d dataplane.SyncDaemon) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDaemon, func(nae *netlink.AttributeEncoder) error {
		state := uint32(stateMaster)
		if d.Backup {
			state = stateBackup
		}
		nae.Uint32(daemonAttrState, state)
		nae.String(daemonAttrMcastIfn, d.Interface)
		nae.Uint32(daemonAttrSyncID, uint32(d.SyncID))
		if d.MaxLen != 0 {
			nae.Uint16(daemonAttrSyncMaxlen, d.MaxLen)
		}
		switch {
		case d.Group.Is4():
			b := d.Group.As4()
			nae.Bytes(daemonAttrMcastGroup, b[:])
		case d.Group.Is6():
			b := d.Group.As16()
			nae.Bytes(daemonAttrMcastGroup6, b[:])
		}
		if d.Port != 0 {
			nae.Uint16(daemonAttrMcastPort, d.Port)
		}
		if d.TTL != 0 {
			nae.Uint8(daemonAttrMcastTTL, d.TTL)
		}
		return nil
	})
	return v.daemonCmd(cmdNewDaemon, ae, "start")
}

// StopDaemon implements dataplane.SyncDaemons: IPVS_CMD_DEL_DAEMON.
func (v *Dataplane) StopDaemon(backup bool) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDaemon, func(nae *netlink.AttributeEncoder) error {
		state := uint32(stateMaster)
		if backup {
			state = stateBackup
		}
		nae.Uint32(daemonAttrState, state)
		return nil
	})
	return v.daemonCmd(cmdDelDaemon, ae, "stop")
}

func (v *Dataplane) daemonCmd(cmd uint8, ae *netlink.AttributeEncoder, what string) error {
	data, err := ae.Encode()
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.genl(func(c *genetlink.Conn, family uint16) error {
		_, err := c.Execute(genetlink.Message{Header: genetlink.Header{Command: cmd, Version: genlVersion}, Data: data},
			family, netlink.Request|netlink.Acknowledge)
		if err != nil {
			return fmt.Errorf("%s the IPVS sync daemon: %w", what, err)
		}
		return nil
	})
}

// Daemons implements dataplane.SyncDaemons: IPVS_CMD_GET_DAEMON.
func (v *Dataplane) Daemons() ([]dataplane.SyncDaemon, error) {
	var out []dataplane.SyncDaemon
	v.mu.Lock()
	defer v.mu.Unlock()
	err := v.genl(func(c *genetlink.Conn, family uint16) error {
		msgs, err := c.Execute(genetlink.Message{Header: genetlink.Header{Command: cmdGetDaemon, Version: genlVersion}},
			family, netlink.Request|netlink.Dump)
		if err != nil {
			return fmt.Errorf("list the IPVS sync daemons: %w", err)
		}
		for _, m := range msgs {
			d, err := decodeDaemon(m.Data)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b dataplane.SyncDaemon) int {
		if a.Backup == b.Backup {
			return 0
		}
		if b.Backup {
			return -1
		}
		return 1
	})
	return out, err
}

func decodeDaemon(data []byte) (dataplane.SyncDaemon, error) {
	var d dataplane.SyncDaemon
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return d, err
	}
	for ad.Next() {
		if ad.Type() != cmdAttrDaemon {
			continue
		}
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			for nad.Next() {
				switch nad.Type() {
				case daemonAttrState:
					d.Backup = nad.Uint32()&stateBackup != 0
				case daemonAttrMcastIfn:
					d.Interface = nad.String()
				case daemonAttrSyncID:
					d.SyncID = uint8(nad.Uint32())
				case daemonAttrSyncMaxlen:
					d.MaxLen = nad.Uint16()
				case daemonAttrMcastGroup:
					if a, ok := netip.AddrFromSlice(nad.Bytes()); ok {
						d.Group = a
					}
				case daemonAttrMcastGroup6:
					if a, ok := netip.AddrFromSlice(nad.Bytes()); ok {
						d.Group = a
					}
				case daemonAttrMcastPort:
					d.Port = nad.Uint16()
				case daemonAttrMcastTTL:
					d.TTL = nad.Uint8()
				}
			}
			return nil
		})
	}
	if err := ad.Err(); err != nil {
		return d, errors.Join(errors.New("decode an IPVS sync daemon"), err)
	}
	return d, nil
}
