package smtp

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Trio is how keepalived names a server in its mails (FMT_RS, FMT_VS:
// inet_sockaddrtotrio): "[10.0.0.1]:tcp:80". proto is tcp, udp, sctp or
// none.
func Trio(a netip.AddrPort, proto string) string {
	return "[" + a.Addr().String() + "]:" + proto + ":" + strconv.Itoa(int(a.Port()))
}

// FWMarkName and GroupName name a virtual server by fwmark ("FWM 1") or
// virtual_server_group ("[NAME]:0"), as keepalived's format_vs does.
func FWMarkName(mark uint32) string { return "FWM " + strconv.FormatUint(uint64(mark), 10) }

// GroupName names a virtual server by virtual_server_group.
func GroupName(group string, port uint16) string {
	return "[" + group + "]:" + strconv.Itoa(int(port))
}

// RouterID is global_defs' router_id as the subjects name the director:
// id, or the host name when it is not set (keepalived's
// set_default_router_id).
func RouterID(id string) string {
	if id == "" {
		return localName()
	}
	return id
}

// subject is keepalived's "[router_id] ..." subject.
func subject(routerID, s string) string {
	return "[" + routerID + "] " + s
}

// RealServer is the mail a real server's checker sends when it changes
// state (SMTP_MSG_RS): realUp is the real server's state after the change,
// body the checker's words (CheckerBody).
func RealServer(routerID, rs, vs string, realUp bool, body string) Mail {
	state := "DOWN"
	if realUp {
		state = "UP"
	}
	return Mail{Subject: subject(routerID, fmt.Sprintf("Realserver %s of virtual server %s - %s", rs, vs, state)), Body: body}
}

// RealServerRemoved is the mail about a real server taken out of the
// configuration by a reload, or shut down with omega (SMTP_MSG_RS_SHUT).
func RealServerRemoved(routerID, rs, vs string, shuttingDown bool) Mail {
	body := "=> Removing <="
	if shuttingDown {
		body = "=> Shutting down <="
	}
	return Mail{Subject: subject(routerID, fmt.Sprintf("Realserver %s of virtual server %s - DOWN", rs, vs)), Body: body}
}

// Quorum is the mail about a virtual server gaining or losing its quorum
// (SMTP_MSG_VS, from ipwrapper.c's do_vs_notifies). threshold is quorum
// plus hysteresis when gaining and minus it when losing; the body writes
// "+" either way, as keepalived does. init is the first computation, at
// start.
func Quorum(routerID, vs string, up, init bool, quorum, hysteresis uint32, threshold, weightSum int64) Mail {
	state, what := "DOWN", "Lost quorum"
	switch {
	case up && init:
		state, what = "UP", "Starting with quorum up"
	case up:
		state, what = "UP", "Gained quorum"
	case init:
		what = "Starting with quorum down"
	}
	return Mail{Subject: subject(routerID, fmt.Sprintf("Virtualserver %s - %s", vs, state)),
		Body: cut(fmt.Sprintf("=> %s %d+%d=%d <= %d <=", what, quorum, hysteresis, threshold, weightSum), 79)}
}

// QuorumShutdown is the virtual server's mail when keepalived stops with
// omega.
func QuorumShutdown(routerID, vs string, up bool) Mail {
	state := "DOWN"
	if up {
		state = "UP"
	}
	return Mail{Subject: subject(routerID, fmt.Sprintf("Virtualserver %s - %s", vs, state)), Body: "=> Shutting down <="}
}

// VRRP states, as the mails know them.
const (
	StateMaster  = "MASTER"
	StateBackup  = "BACKUP"
	StateFault   = "FAULT"
	StateStop    = "STOP"
	StateDeleted = "DELETED"
)

// Instance is the mail of a vrrp_instance entering state
// (vrrp_smtp_notifier); ok is false for a state keepalived sends no mail
// about. keepalived sends it only when the state differs from the last
// one mailed, and not for FAULT with no_email_faults: the caller keeps
// that.
func Instance(routerID, name, state string) (m Mail, ok bool) {
	var s, body string
	switch state {
	case StateMaster:
		s, body = "Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="
	case StateBackup:
		s, body = "Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="
	case StateFault:
		s, body = "Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="
	case StateStop:
		s, body = "Stopping", "=> VRRP Instance stopping <="
	case StateDeleted:
		s, body = "Deleted", "=> VRRP Deleted at reload <="
	default:
		return Mail{}, false
	}
	return Mail{Subject: subject(routerID, "VRRP Instance "+name+" - "+s), Body: body}, true
}

// SyncGroup is the mail of a vrrp_sync_group entering state
// (vrrp_sync_smtp_notifier), under the same rules as Instance.
func SyncGroup(routerID, name, state string) (m Mail, ok bool) {
	var s, body string
	switch state {
	case StateMaster:
		s, body = "Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="
	case StateBackup:
		s, body = "Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="
	case StateFault:
		s, body = "Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="
	case StateStop:
		s, body = "Stopping", "=> All VRRP group instances are now stopping <="
	default:
		return Mail{}, false
	}
	return Mail{Subject: subject(routerID, "VRRP Group "+name+" - "+s), Body: body}, true
}

// CheckerBody is what a checker of kind (keepalived's name: TCP_CHECK,
// HTTP_GET, ...) says in its mail when it goes up or down. detail is what
// failed, which only SMTP_CHECK and MISC_CHECK put in the mail (MISC_CHECK:
// "failed" or "timed out"). FILE_CHECK and BFD_CHECK send no mail.
func CheckerBody(kind string, up bool, detail string) (body string, ok bool) {
	word := "failed"
	if up {
		word = "succeed"
	}
	switch kind {
	case "TCP_CHECK":
		return "=> TCP CHECK " + word + " on service <=", true
	case "HTTP_GET", "SSL_GET":
		if up {
			return "=> CHECK succeed on service <=", true
		}
		return "=> CHECK failed on service : HTTP request failed <=", true
	case "SMTP_CHECK":
		if up {
			return "=> CHECK succeed on service <=", true
		}
		if detail == "" {
			return "=> CHECK failed on service <=", true
		}
		return cut("=> CHECK failed on service : "+detail+" <=", 541), true
	case "DNS_CHECK":
		return "=> DNS_CHECK: " + word + " on service <=", true
	case "UDP_CHECK":
		return "=> UDP CHECK " + word + " on service <=", true
	case "PING_CHECK":
		return "=> ICMP CHECK " + word + " on service <=", true
	case "MISC_CHECK":
		if up {
			return "=> MISC CHECK succeeded on service <=", true
		}
		if detail == "" {
			detail = "failed"
		}
		return "=> MISC CHECK " + detail + " on service <=", true
	}
	return "", false
}
