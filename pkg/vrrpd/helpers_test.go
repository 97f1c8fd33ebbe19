package vrrpd

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/pkg/config"
)

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.ParseBytes("keepalived.conf", []byte(text))
	require.NoError(t, err)
	return cfg
}
