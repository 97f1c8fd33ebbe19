// Package ipvssync is a codec for the connection-synchronisation messages
// that the Linux IPVS sync daemon (ipvsadm --start-daemon, keepalived's
// lvs_sync_daemon) multicasts from a master director to its backups. It lets
// an xlb node send connections that a kernel backup installs, and install
// exactly the connections a kernel backup would from a kernel master.
//
// It follows net/netfilter/ipvs/ip_vs_sync.c as in mainline; the golden
// vectors in testdata were captured from Debian's 6.1.0-56 kernel, whose
// wire handling is the same:
//
//   - sync.go: Message, Conn and their options (sequence deltas for NAT with
//     a payload-mangling helper, persistence-engine name and data), the
//     IP_VS_CONN_F_* flags, the TCP and template states, the protocols IPVS
//     knows, the Drop records of what a receiver loses, BackupFlags and the
//     sentinel errors.
//   - encode.go: MarshalBinary/AppendBinary for both versions, following
//     ip_vs_sync_conn and ip_vs_sync_conn_v0; Batch, which packs connections
//     into messages the way the master fills its sync buffers up to
//     sync_maxlen.
//   - decode.go: UnmarshalBinary, following ip_vs_process_message,
//     ip_vs_proc_sync_conn and ip_vs_process_message_v0 rule for rule: which
//     input drops the whole datagram (an error), which skips one record and
//     which drops a record and every later one (Message.Dropped).
//
// Versions. Version 1 (net.ipv4.vs.sync_version=1, the default)
// carries IPv4 and IPv6 connections, fwmark, timeout and TLV options in
// variable-length records padded to 4 bytes. Version 0 carries IPv4 only, in
// fixed 24-byte records without timeout or fwmark, followed by the sequence
// options in the sender's host byte order; this package reads and writes
// those little-endian, as every x86 and arm64 sender has them.
//
// What it does not do: sockets (224.0.0.81, port 8848+thread id, TTL 1,
// from the primary address of the interface), threads, queueing and the 2 s
// flush, the decision of when a connection is synced (ip_vs_sync_conn_needed),
// the receiver's syncid filter (drop when the local syncid is non-zero and
// differs from Message.SyncID), the lookup of the persistence engine a
// record names (the kernel skips a record whose PEName is not loaded), and
// installing, updating or expiring connections (ip_vs_proc_conn). It has no
// I/O and no clock.
package ipvssync
