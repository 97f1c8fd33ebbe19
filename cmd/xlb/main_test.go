package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(env{stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	code, out, _ := runCmd()
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "demo")
	assert.Contains(t, out, "version")

	code, _, errOut := runCmd("frobnicate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unknown command "frobnicate"`)
}

func TestDemoFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--weights", "3,x"}, `"x" is not a weight`},
		{[]string{"demo", "--weights", "3,-1"}, `"-1" is not a weight`},
		{[]string{"demo", "--mode", "turbo"}, `"turbo" is not auto, native or generic`},
		{[]string{"demo", "--bogus"}, "unknown flag: --bogus"},
	} {
		code, _, errOut := runCmd(c.args...)
		assert.Equal(t, 2, code, "%v", c.args)
		assert.Contains(t, errOut, c.want, "%v", c.args)
	}
	code, _, errOut := runCmd("demo", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, errOut, "--weights")
}
