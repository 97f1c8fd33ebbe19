package ipvsadm

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/lvs"
)

// xlbadm's FULLNAT: --fullnat reals (listed FullNat as DPVS's ipvsadm
// lists them), DPVS's --add-laddr/--del-laddr/--get-laddr with --laddr
// (-P, -Q, -G, -z), and -S writing the local addresses as the commands
// that give them, which -R reads back.
func TestFULLNATCommands(t *testing.T) {
	st := NewState()
	run(t, st, `-A -t 10.0.0.100:80 -s rr
-a -t 10.0.0.100:80 -r 10.1.0.11:8080 --fullnat -w 2
-a -t 10.0.0.100:80 -r 10.1.0.12:8080 --fullnat
-P -t 10.0.0.100:80 -z 10.0.0.50
--add-laddr -t 10.0.0.100:80 --laddr 10.0.0.51
`)
	svc := st.Find(&Service{Protocol: lvs.TCP, Addr: netip.MustParseAddr("10.0.0.100"), Port: 80})
	require.NotNil(t, svc)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.50"), netip.MustParseAddr("10.0.0.51")}, svc.LocalAddrs)
	assert.Equal(t, lvs.FNAT, svc.Dests[0].Forward)
	assert.EqualValues(t, 8080, svc.Dests[0].Port, "FULLNAT maps ports, as NAT")

	ln := listN(t, st)
	assert.Contains(t, ln, "  -> 10.1.0.11:8080               FullNat 2      0          0         \n")

	out, err := exec(t, st, "-G -n")
	require.NoError(t, err)
	assert.Equal(t, "Prot     VIP:VPort                         TOTAL  LocalAddress\n"+
		"TCP      10.0.0.100:80                     2     \n"+
		"                                                  10.0.0.50\n"+
		"                                                  10.0.0.51\n", out)

	_, err = exec(t, st, "-P -t 10.0.0.100:80 -z 10.0.0.50")
	assert.True(t, errors.Is(err, ErrLaddrExists), "%v", err)
	_, err = exec(t, st, "-Q -t 10.0.0.100:80 -z 10.0.0.99")
	assert.True(t, errors.Is(err, ErrNoLaddr), "%v", err)
	_, err = exec(t, st, "-P -t 10.0.0.101:80 -z 10.0.0.50")
	assert.True(t, errors.Is(err, ErrNoService), "%v", err)
	_, err = Parse(strings.Fields("-P -t 10.0.0.100:80"))
	assert.ErrorContains(t, err, "You need to supply the 'laddr' option for the 'add-laddr' command")
	_, err = Parse(strings.Fields("-A -t 10.0.0.100:81 -z 10.0.0.50"))
	assert.ErrorContains(t, err, "Illegal 'laddr' option with the 'add-service' command")
	_, err = Parse(strings.Fields("-a -t 10.0.0.100:80 -r 10.1.0.13 --fullnat -m"))
	assert.ErrorContains(t, err, "multiple 'forwarding-method' options specified")

	// Save and restore round-trip, local addresses included.
	saved, err := exec(t, st, "-S -n")
	require.NoError(t, err)
	assert.Contains(t, saved, "-a -t 10.0.0.100:80 -r 10.1.0.11:8080 --fullnat -w 2\n")
	assert.Contains(t, saved, "--add-laddr -t 10.0.0.100:80 --laddr 10.0.0.50\n--add-laddr -t 10.0.0.100:80 --laddr 10.0.0.51\n")
	again := NewState()
	require.NoError(t, again.Restore(&strings.Builder{}, strings.NewReader(saved), Parser{}))
	resaved, err := exec(t, again, "-S -n")
	require.NoError(t, err)
	assert.Equal(t, saved, resaved)

	run(t, st, "-Q -t 10.0.0.100:80 -z 10.0.0.50")
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.51")}, st.Find(svc).LocalAddrs)

	// IPv6: the service and its reals in brackets, local addresses
	// plain, as -S writes them back.
	run(t, st, `-A -t [2001:db8::100]:80 -s rr
-a -t [2001:db8::100]:80 -r [2001:db8:1::11]:8080 --fullnat
-P -t [2001:db8::100]:80 -z 2001:db8::50
`)
	svc6 := st.Find(&Service{Protocol: lvs.TCP, Addr: netip.MustParseAddr("2001:db8::100"), Port: 80})
	require.NotNil(t, svc6)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("2001:db8::50")}, svc6.LocalAddrs)
	saved, err = exec(t, st, "-S -n")
	require.NoError(t, err)
	assert.Contains(t, saved, "-a -t [2001:db8::100]:80 -r [2001:db8:1::11]:8080 --fullnat -w 1\n--add-laddr -t [2001:db8::100]:80 --laddr 2001:db8::50\n")

	// FULLNAT across families, as DPVS's ipvsadm takes NAT64 (and xlb
	// NAT46), listed and saved as any real; other methods still need a
	// tunnel to cross, with ipvsadm's words.
	run(t, st, `-a -t [2001:db8::100]:80 -r 10.1.0.21:8080 --fullnat
-P -t [2001:db8::100]:80 -z 10.0.0.60
-a -t 10.0.0.100:80 -r [2001:db8:1::21]:8080 --fullnat
-P -t 10.0.0.100:80 -z 2001:db8::60
`)
	ln = listN(t, st)
	assert.Contains(t, ln, "  -> 10.1.0.21:8080               FullNat 1")
	assert.Contains(t, ln, "  -> [2001:db8:1::21]:8080        FullNat 1")
	saved, err = exec(t, st, "-S -n")
	require.NoError(t, err)
	assert.Contains(t, saved, "-a -t [2001:db8::100]:80 -r 10.1.0.21:8080 --fullnat -w 1\n")
	assert.Contains(t, saved, "-a -t 10.0.0.100:80 -r [2001:db8:1::21]:8080 --fullnat -w 1\n")
	_, err = Parse(strings.Fields("-a -t 10.0.0.100:80 -r [2001:db8:1::22]:8080 -m"))
	assert.ErrorContains(t, err, "Different address family is allowed only for tunneling servers")
}
