// Package control is the daemon's control API: JSON over HTTP on a unix
// socket (/run/xlb/xlb.sock, mode 0600, so only root talks to it), the way
// ipvsadm talks to the kernel. `xlb status` and xlbadm are its clients;
// the daemon serves it through a Backend.
package control
