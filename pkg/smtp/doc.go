// Package smtp is keepalived's smtp_alert: the mails keepalived 2.2.7 sends
// when a real server's checker changes state, a virtual server gains or
// loses its quorum, and a VRRP instance or sync group changes state, worded
// as keepalived words them (core/smtp.c and its callers in check/*.c,
// check/ipwrapper.c and vrrp/vrrp_notify.c), and the SMTP client that sends
// them as keepalived does (HELO, MAIL FROM, RCPT TO for each recipient,
// DATA with its Date, From, Subject, X-Mailer and To headers, QUIT).
//
// [Server.Send] sends one mail and waits for it; an [Alerter] queues mails
// and sends them one at a time in the background, so that a health or VRRP
// transition never waits on a mail server. Which blocks mail (smtp_alert
// and its global defaults) is pkg/config's to resolve.
package smtp
