package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeepalivedKeywordsNeverUnknown: every keyword keepalived accepts in a
// block is either implemented or warned about there, never rejected as
// unknown, with or without a value or a block.
func TestKeepalivedKeywordsNeverUnknown(t *testing.T) {
	require.Len(t, keepalivedKeywords, len(contextWrap))
	for ctx, words := range keepalivedKeywords {
		wrap, ok := contextWrap[ctx]
		require.True(t, ok, ctx)
		for _, kw := range words {
			for _, form := range []string{kw, kw + " 1", kw + " {\n}"} {
				_, err := parseFiles(map[string]string{"keepalived.conf": wrap[0] + form + "\n" + wrap[1]})
				var list ErrorList
				if errors.As(err, &list) {
					for _, e := range list {
						assert.NotContains(t, e.Msg, "unknown keyword", "%s in %s: %v", form, ctx, e)
						assert.NotContains(t, e.Msg, "unknown top-level", "%s in %s: %v", form, ctx, e)
					}
				}
			}
		}
	}
}

// TestSupportedKeywordsAreKeepalivedKeywords guards against xlb accepting
// a keyword keepalived would reject: each keyword the parser implements
// must be in keepalived's table for that block. nb_get_retry is the one
// deprecated alias keepalived 2.2.7 takes in HTTP_GET/SSL_GET, though not in its table.
func TestSupportedKeywordsAreKeepalivedKeywords(t *testing.T) {
	for ctx, wrap := range contextWrap {
		for _, kw := range candidateKeywords() {
			if keepalivedKnows(ctx, kw) || (kw == "nb_get_retry" && (ctx == ctxHTTPGet || ctx == ctxSSLGet)) {
				continue
			}
			src := wrap[0] + kw + " 1\n" + wrap[1]
			_, p := parseProblems(memSource{"keepalived.conf": src}, "keepalived.conf", src, Options{})
			found := false
			for _, e := range p.all {
				if e.Word == kw && (strings.Contains(e.Msg, "unknown") || strings.Contains(e.Msg, "outside a virtual_server") || strings.Contains(e.Msg, "include")) {
					found = true
				}
			}
			assert.True(t, found, "%s is accepted in %s but keepalived does not know it there: %v", kw, ctx, p.all)
		}
	}
}

// candidateKeywords are all the keywords of all blocks.
func candidateKeywords() []string {
	seen := map[string]bool{}
	var out []string
	for _, words := range keepalivedKeywords {
		for _, w := range words {
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}
