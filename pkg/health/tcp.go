package health

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// TCPCheck is keepalived's TCP_CHECK: up when a TCP connection to Addr is
// established within Timeout. The connection is closed at once; nothing is
// sent on it.
type TCPCheck struct {
	Addr     netip.AddrPort // connect_ip and connect_port
	Bind     netip.Addr     // bindto; zero lets the kernel choose
	BindPort uint16         // bind_port; zero lets the kernel choose
	Mark     uint32         // SO_MARK: a check through the data path (dataplane.CheckRouter); 0 none
	Timeout  time.Duration  // connect_timeout; zero means DefaultConnectTimeout
}

// Check connects once.
func (c *TCPCheck) Check(ctx context.Context) Result {
	if !c.Addr.IsValid() {
		return down(errors.New("tcp check: no address to connect to"))
	}
	timeout := connectTimeout(c.Timeout)
	d := dialer("tcp", c.Bind, c.BindPort, c.Mark)
	d.Timeout = timeout
	conn, err := d.DialContext(ctx, "tcp", c.Addr.String())
	if err != nil {
		return down(ioError(ctx, "connect "+c.Addr.String(), timeout, err))
	}
	_ = conn.Close()
	return up()
}
