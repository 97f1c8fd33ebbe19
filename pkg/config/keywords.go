package config

import (
	"maps"
	"slices"
)

// keepalivedKeywords lists, per block, every keyword keepalived 2.2.7 (the
// Debian 12 package, built with LVS, VRRP, BFD, SNMP, DBus, nftables and
// regex support) accepts there. A keyword xlb does not implement is warned
// about if it is in this table, and is an error if it is not, as a typo
// would be.
//
// The table was produced by running "keepalived -t" on one configuration per
// candidate word and block, candidates being the words of keepalived.conf(5)
// and of the keepalived binary, and keeping those not reported as "Unknown
// keyword". Regenerate it the same way when supporting a newer keepalived.
var keepalivedKeywords = map[string][]string{
	"top": {
		"SSL", "bfd_instance", "child_wait_time", "garp_group", "global_defs", "instance",
		"interface_up_down_delays", "linkbeat_interfaces", "linkbeat_use_polling",
		"namespace_with_ipsets", "net_namespace", "net_namespace_ipvs", "static_ipaddress",
		"static_routes", "static_rules", "track_file", "track_group", "use_pid_dir",
		"virtual_server", "virtual_server_group", "vrrp_instance", "vrrp_script",
		"vrrp_sync_group", "vrrp_track_file", "vrrp_track_process",
	},
	"global_defs": {
		"bfd_cpu_affinity", "bfd_no_swap", "bfd_priority", "bfd_process_name",
		"bfd_rlimit_rtime", "bfd_rlimit_rttime", "bfd_rt_priority", "checker_cpu_affinity",
		"checker_log_all_failures", "checker_no_swap", "checker_priority",
		"checker_process_name", "checker_rlimit_rtime", "checker_rlimit_rttime",
		"checker_rt_priority", "config_save_dir", "data_use_instance", "dbus_service_name",
		"default_interface", "disable_local_igmp", "dynamic_interfaces", "enable_dbus",
		"enable_script_security", "enable_snmp_checker", "enable_snmp_keepalived",
		"enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_snmp_vrrp",
		"enable_traps", "fifo_write_vrrp_states_on_reload", "include_check",
		"log_unknown_vrids", "lvs_flush", "lvs_flush_on_stop", "lvs_flush_onstop",
		"lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
		"lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force",
		"lvs_notify_fifo", "lvs_notify_fifo_script", "lvs_process_name", "lvs_sync_daemon",
		"lvs_timeouts", "max_auto_priority", "min_auto_priority_delay", "nftables",
		"nftables_counters", "nftables_ifindex", "nftables_ipvs", "nftables_ipvs_priority",
		"nftables_ipvs_start_fwmark", "nftables_priority", "no_checker_emails",
		"no_email_faults", "notification_email", "notification_email_from", "notify_fifo",
		"notify_fifo_script", "process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force",
		"process_name", "process_names", "random_seed", "reload_check_config", "reload_file",
		"reload_repeat", "reload_time_file", "router_id", "rs_init_notifies", "script_user",
		"shutdown_script", "shutdown_script_timeout", "smtp_alert", "smtp_alert_checker",
		"smtp_alert_vrrp", "smtp_connect_timeout", "smtp_helo_name", "smtp_server",
		"snmp_socket", "startup_script", "startup_script_timeout", "tmp_config_directory",
		"umask", "vmac_addr_prefix", "vmac_prefix", "vrrp_check_unicast_src",
		"vrrp_cpu_affinity", "vrrp_down_timer_adverts", "vrrp_garp_extra_if",
		"vrrp_garp_interval", "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat",
		"vrrp_garp_master_delay", "vrrp_garp_master_refresh",
		"vrrp_garp_master_refresh_repeat", "vrrp_garp_master_repeat", "vrrp_gna_interval",
		"vrrp_higher_prio_send_advert", "vrrp_iptables", "vrrp_lower_prio_no_advert",
		"vrrp_mcast_group4", "vrrp_mcast_group6", "vrrp_min_garp",
		"vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force",
		"vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force",
		"vrrp_no_swap", "vrrp_notify_fifo", "vrrp_notify_fifo_script",
		"vrrp_notify_priority_changes", "vrrp_priority", "vrrp_process_name",
		"vrrp_rlimit_rtime", "vrrp_rlimit_rttime", "vrrp_rt_priority",
		"vrrp_rx_bufs_multiplier", "vrrp_rx_bufs_policy", "vrrp_skip_check_adv_addr",
		"vrrp_startup_delay", "vrrp_strict", "vrrp_version", "vrrp_vmac_garp_intvl",
	},
	"vrrp_script": {
		"fall", "init_fail", "interval", "rise", "script", "timeout", "user", "weight",
	},
	"track_file": {
		"file", "init_file", "weight",
	},
	"vrrp_instance": {
		"accept", "advert_int", "authentication", "check_unicast_src", "debug",
		"dont_track_primary", "down_timer_adverts", "garp_extra_if", "garp_lower_prio_delay",
		"garp_lower_prio_repeat", "garp_master_delay", "garp_master_refresh",
		"garp_master_refresh_repeat", "garp_master_repeat", "higher_prio_send_advert",
		"interface", "kernel_rx_buf_size", "linkbeat_use_polling", "lower_prio_no_advert",
		"lvs_sync_daemon_interface", "mcast_dst_ip", "mcast_src_ip", "native_ipv6",
		"no_accept", "nopreempt", "notify", "notify_backup", "notify_deleted",
		"notify_fault", "notify_master", "notify_master_rx_lower_pri",
		"notify_priority_changes", "notify_stop", "old_unicast_checksum", "preempt",
		"preempt_delay", "priority", "promote_secondaries", "skip_check_adv_addr",
		"smtp_alert", "state", "strict_mode", "track_bfd", "track_file", "track_interface",
		"track_process", "track_script", "track_src_ip", "unicast_fault_no_peer",
		"unicast_peer", "unicast_src_ip", "unicast_ttl", "use_ipvlan", "use_vmac",
		"use_vmac_addr", "version", "virtual_ipaddress", "virtual_ipaddress_excluded",
		"virtual_router_id", "virtual_routes", "virtual_rules", "vmac_xmit_base", "vrf",
	},
	"authentication": {
		"auth_pass", "auth_type",
	},
	"vrrp_sync_group": {
		"global_tracking", "group", "notify", "notify_backup", "notify_fault",
		"notify_master", "notify_priority_changes", "notify_stop", "smtp_alert",
		"sync_group_tracking_weight", "track_bfd", "track_file", "track_interface",
		"track_process", "track_script",
	},
	"virtual_server": {
		"alpha", "connect_timeout", "delay_before_retry", "delay_loop", "flag-1", "flag-2",
		"flag-3", "ha_suspend", "hashed", "hysteresis", "inhibit_on_failure", "ip_family",
		"lb_algo", "lb_kind", "lvs_method", "lvs_sched", "mh-fallback", "mh-port", "omega",
		"ops", "persistence_engine", "persistence_granularity", "persistence_timeout",
		"protocol", "quorum", "quorum_down", "quorum_up", "real_server", "retry",
		"sh-fallback", "sh-port", "smtp_alert", "snmp_name", "sorry_server",
		"sorry_server_inhibit", "sorry_server_lvs_method", "virtualhost", "warmup", "weight",
	},
	"real_server": {
		"BFD_CHECK", "DNS_CHECK", "FILE_CHECK", "HTTP_GET", "MISC_CHECK", "PING_CHECK",
		"SMTP_CHECK", "SSL_GET", "TCP_CHECK", "UDP_CHECK", "alpha", "connect_timeout",
		"delay_before_retry", "delay_loop", "inhibit_on_failure", "lthreshold", "lvs_method",
		"notify_down", "notify_up", "retry", "smtp_alert", "snmp_name", "uthreshold",
		"virtualhost", "warmup", "weight",
	},
	"TCP_CHECK": {
		"alpha", "bind_if", "bind_port", "bindto", "connect_ip", "connect_port",
		"connect_timeout", "delay_before_retry", "delay_loop", "fwmark", "log_all_failures",
		"retry", "warmup",
	},
	"HTTP_GET": {
		"alpha", "bind_if", "bind_port", "bindto", "connect_ip", "connect_port",
		"connect_timeout", "delay_before_retry", "delay_loop", "enable_sni", "fast_recovery",
		"fwmark", "http_protocol", "log_all_failures", "nb_get_retry", "retry", "url",
		"virtualhost", "warmup",
	},
	"SSL_GET": {
		"alpha", "bind_if", "bind_port", "bindto", "connect_ip", "connect_port",
		"connect_timeout", "delay_before_retry", "delay_loop", "enable_sni", "fast_recovery",
		"fwmark", "http_protocol", "log_all_failures", "nb_get_retry", "retry", "url",
		"virtualhost", "warmup",
	},
	"url": {
		"digest", "path", "regex", "regex_max_offset", "regex_min_offset", "regex_no_match",
		"regex_options", "regex_stack", "status_code", "virtualhost",
	},
	"MISC_CHECK": {
		"alpha", "delay_before_retry", "delay_loop", "log_all_failures", "misc_dynamic",
		"misc_path", "misc_timeout", "retry", "user", "warmup",
	},
	"DNS_CHECK": {
		"alpha", "bind_if", "bind_port", "bindto", "connect_ip", "connect_port",
		"connect_timeout", "delay_before_retry", "delay_loop", "fwmark", "log_all_failures",
		"name", "retry", "type", "warmup",
	},
	// The checkers below were listed from keepalived 2.2.7's sources
	// (install_*_check_keyword in check_smtp.c, check_udp.c, check_ping.c
	// and check_file.c, and install_checker_common_keywords).
	"SMTP_CHECK": {
		"alpha", "bind_if", "bind_port", "bindto", "connect_ip", "connect_port",
		"connect_timeout", "delay_before_retry", "delay_loop", "fwmark", "helo_name", "host",
		"log_all_failures", "retry", "warmup",
	},
	"host": { // in SMTP_CHECK
		"alpha", "bind_if", "bind_port", "bindto", "connect_ip", "connect_port",
		"connect_timeout", "delay_before_retry", "delay_loop", "fwmark", "log_all_failures",
		"retry", "warmup",
	},
	"UDP_CHECK": {
		"alpha", "bind_if", "bind_port", "bindto", "connect_ip", "connect_port",
		"connect_timeout", "delay_before_retry", "delay_loop", "fwmark", "log_all_failures",
		"max_reply_length", "min_reply_length", "payload", "require_reply", "retry", "warmup",
	},
	"PING_CHECK": {
		"alpha", "bind_if", "bind_port", "bindto", "connect_ip", "connect_port",
		"connect_timeout", "delay_before_retry", "delay_loop", "fwmark", "log_all_failures",
		"retry", "warmup",
	},
	"FILE_CHECK": {
		"track_file", "weight",
	},
}

var keepalivedKeywordSet = func() map[string]map[string]bool {
	m := map[string]map[string]bool{}
	for ctx, words := range keepalivedKeywords {
		m[ctx] = map[string]bool{}
		for _, w := range words {
			m[ctx][w] = true
		}
	}
	return m
}()

// keepalivedKnows reports whether keepalived accepts kw in the block ctx.
func keepalivedKnows(ctx, kw string) bool {
	return keepalivedKeywordSet[ctx][kw]
}

// suggestKeyword returns the keyword of ctx that kw is most likely a
// misspelling of ("lvs_sync_daemon_inteface"), or the global form of an
// instance keyword written in global_defs ("garp_master_delay" there is
// "vrrp_garp_master_delay"), or "" when nothing is close.
func suggestKeyword(ctx, kw string) string {
	if ctx == ctxGlobal && keepalivedKnows(ctx, "vrrp_"+kw) {
		return "vrrp_" + kw
	}
	if kw == "nb_get_retry" && isChecker(ctx) {
		return "retry"
	}
	best, bestD := "", max(2, len(kw)/5)+1
	words := slices.Sorted(maps.Keys(keepalivedKeywordSet[ctx]))
	for _, w := range words {
		if d := editDistance(kw, w); d < bestD {
			best, bestD = w, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
