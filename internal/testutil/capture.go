package testutil

import (
	"encoding/binary"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Captured is one frame a Capture saw, with the kernel's receive time.
type Captured struct {
	At time.Time
	// Outgoing: sent from this end of the interface, not received.
	Outgoing bool
	Frame    []byte
}

// Capture is a packet capture on one interface, in Go: an AF_PACKET socket
// with the kernel's receive timestamps (SO_TIMESTAMPNS).
type Capture struct {
	f      *os.File
	done   chan struct{}
	mu     sync.Mutex
	frames []Captured
}

// StartCapture captures every frame on ifname; in runs a function in the
// interface's network namespace (NS.Do). Close stops it.
func StartCapture(in func(func() error) error, ifname string) (*Capture, error) {
	proto := int(htons(unix.ETH_P_ALL))
	var fd int
	err := in(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		if err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err == nil {
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		}
		if err != nil {
			unix.Close(fd)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	c := &Capture{f: os.NewFile(uintptr(fd), "capture:"+ifname), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) loop() {
	defer close(c.done)
	rc, err := c.f.SyscallConn()
	if err != nil {
		return
	}
	buf, oob := make([]byte, 2048), make([]byte, 128)
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			continue
		}
		p := Captured{At: time.Now(), Frame: append([]byte(nil), buf[:n]...)}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			p.Outgoing = ll.Pkttype == unix.PACKET_OUTGOING
		}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
					// struct timespec of a 64-bit platform.
					p.At = time.Unix(int64(binary.NativeEndian.Uint64(m.Data[0:8])), int64(binary.NativeEndian.Uint64(m.Data[8:16])))
				}
			}
		}
		c.mu.Lock()
		c.frames = append(c.frames, p)
		c.mu.Unlock()
	}
}

// Frames are the frames captured so far, from the i-th on.
func (c *Capture) Frames(i int) []Captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i >= len(c.frames) {
		return nil
	}
	return append([]Captured(nil), c.frames[i:]...)
}

// Close stops the capture.
func (c *Capture) Close() error {
	err := c.f.Close()
	<-c.done
	return err
}
