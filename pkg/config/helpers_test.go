package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// parseFiles parses files["keepalived.conf"] with the other files available
// to include, without touching the disk.
func parseFiles(files map[string]string) (*Config, error) {
	return parse(memSource(files), "keepalived.conf", []byte(files["keepalived.conf"]), Options{ConfigID: "testhost"})
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := parseFiles(map[string]string{"keepalived.conf": src})
	require.NoError(t, err)
	return cfg
}

// parseErrors parses src strictly (warnings are errors, as with xlb
// check --strict), which must fail, and returns its errors. Each must
// also be reported without --strict: as an error, or as a warning with
// the same text (what keepalived does about it after a colon).
func parseErrors(t *testing.T, src string) ErrorList {
	t.Helper()
	files := map[string]string{"keepalived.conf": src}
	_, err := parse(memSource(files), "keepalived.conf", []byte(src), Options{ConfigID: "testhost", Strict: true})
	require.Error(t, err)
	var list ErrorList
	require.True(t, errors.As(err, &list), "error is %T", err)

	_, p := parseProblems(memSource(files), "keepalived.conf", src, Options{ConfigID: "testhost"})
	var lenient []string
	for _, e := range p.errs {
		lenient = append(lenient, e.Error())
	}
	for _, w := range p.warns {
		lenient = append(lenient, w.String())
	}
	for _, e := range list {
		found := false
		for _, l := range lenient {
			found = found || l == e.Error() || strings.HasPrefix(l, e.Error()+": ")
		}
		require.True(t, found, "%q is reported without --strict too (got %q)", e.Error(), lenient)
	}
	return list
}

func warningStrings(cfg *Config) []string {
	var out []string
	for _, w := range cfg.Warnings {
		out = append(out, w.String())
	}
	return out
}

// clearPositions zeroes every Pos in v and drops the warnings, so that
// configs read from different texts can be compared.
func clearPositions(cfg *Config) {
	cfg.Warnings = nil
	clearPos(reflect.ValueOf(cfg).Elem())
}

var posType = reflect.TypeOf(Pos{})

func clearPos(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == posType {
			v.Set(reflect.Zero(posType))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			clearPos(v.Field(i))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			clearPos(v.Index(i))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			clearPos(v.Elem())
		}
	}
}

// vs1 wraps real server lines in a minimal TCP virtual server.
func vs1(body string) string {
	return "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind DR\n" + body + "\n}\n"
}

// vrrp1 wraps instance lines in a minimal vrrp_instance.
func vrrp1(body string) string {
	return "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n" + body + "\n virtual_ipaddress {\n  10.0.0.100/24\n }\n}\n"
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }
