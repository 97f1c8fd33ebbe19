package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeywordExampleComplete: every block's example reads without an
// error as it stands, and with a comment where the line goes, so a
// keyword's line is all that decides what is read.
func TestKeywordExampleComplete(t *testing.T) {
	for block := range keepalivedKeywords {
		src, at, ok := KeywordExample(block, "# here")
		require.True(t, ok, block)
		_, p := parseProblems(memSource{"keepalived.conf": src}, "keepalived.conf", src, Options{ConfigID: "example"})
		assert.Empty(t, p.errs, "%s:\n%s", block, src)
		assert.Greater(t, at, 0, block)
	}
	_, _, ok := KeywordExample("no_such_block", "x")
	assert.False(t, ok)
}

// TestKeywordUses: the classification finds both kinds where the parser
// says so: an implemented keyword, a keyword that falls to ps.unknown,
// BFD_CHECK (warned about by its own case) and a block-taking one.
func TestKeywordUses(t *testing.T) {
	uses := map[[2]string]bool{}
	n := 0
	for _, u := range KeywordUses() {
		uses[[2]string{u.Block, u.Keyword}] = u.Implemented
		n++
	}
	total := 0
	for _, words := range keepalivedKeywords {
		total += len(words)
	}
	assert.Equal(t, total, n)
	for k, want := range map[[2]string]bool{
		{ctxVirtualServer, "lvs_sched"}:            true,
		{ctxVirtualServer, "persistence_engine"}:   false,
		{ctxRealServer, "TCP_CHECK"}:               true,
		{ctxRealServer, "BFD_CHECK"}:               false,
		{ctxInstance, "virtual_ipaddress"}:         true,
		{ctxInstance, "virtual_routes"}:            false,
		{ctxGlobal, "router_id"}:                   true,
		{ctxGlobal, "lvs_sync_daemon"}:             true,
		{ctxInstance, "lvs_sync_daemon_interface"}: true,
		{ctxTop, "static_ipaddress"}:               false,
		{ctxTop, "vrrp_instance"}:                  true,
		{ctxURL, "digest"}:                         true,
	} {
		got, ok := uses[k]
		require.True(t, ok, k)
		assert.Equal(t, want, got, "%v", k)
	}
}
