package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xlbproject/xlb/internal/testutil"
)

// chromium is the browser for the status page's test: Debian's chromium
// (tools/deps.sh test installs it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium: tools/deps.sh test installs it")
	}
	t.Skip("no chromium (apt install chromium)")
	return ""
}

// The status page in a real headless browser: it loads with no console
// error, shows the daemon's services and reals, a real whose server stops
// turns red within its checker's timing, and the rate graph moves while
// traffic runs. XLB_SCREENSHOT=FILE saves a screenshot (docs/status-page.png
// is one).
func TestStatusPageInBrowser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	browser := chromium(t)
	topo := testutil.NewDRServing(t)
	cfg := filepath.Join(t.TempDir(), "keepalived.conf")
	require.NoError(t, os.WriteFile(cfg, []byte(`
virtual_server 10.77.1.100 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 10.77.0.11 80 {
        weight 3
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.77.0.12 80 {
        weight 2
        TCP_CHECK { connect_timeout 1 }
    }
}
`), 0o644))
	d := startDaemon(t, topo.Director, Options{ConfigFile: cfg, Interfaces: []string{"eth0"}, Metrics: "127.0.0.1:9611"})
	d.waitReals(t, map[string]bool{"10.77.0.11": true, "10.77.0.12": true})

	// The browser runs in the director's namespace, where the page is.
	wrapper := filepath.Join(t.TempDir(), "chromium-in-ns")
	require.NoError(t, os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nexec nsenter --net=/run/netns/%s %s \"$@\"\n", topo.Director.Name, browser)), 0o755))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(wrapper), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 500))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var mu sync.Mutex
	var consoleErrors []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				consoleErrors = append(consoleErrors, fmt.Sprintf("console.error %v", e.Args))
			}
		case *runtime.EventExceptionThrown:
			consoleErrors = append(consoleErrors, fmt.Sprintf("exception: %s", e.ExceptionDetails.Text))
		}
	}))

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate("http://127.0.0.1:9611/"),
		chromedp.WaitVisible(`tr[data-service="TCP 10.77.1.100:80"]`),
		chromedp.WaitVisible(`tr[data-real="10.77.0.11:80"].up`),
		chromedp.WaitVisible(`tr[data-real="10.77.0.12:80"].up`),
	))

	// Traffic: the service's graph moves (its last InPPS is not zero).
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		c := topo.HTTPClient()
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = testutil.Get(context.Background(), c, "http://10.77.1.100/")
		}
	}()
	lastPPS := func() float64 {
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(`tr[data-service="TCP 10.77.1.100:80"] canvas`, "data-last-pps"))
		require.NoError(t, err)
		f, _ := strconv.ParseFloat(v.Value, 64)
		return f
	}
	require.Eventually(t, func() bool { return lastPPS() > 0 }, 15*time.Second, 200*time.Millisecond, "the rate graph does not move with traffic")
	close(stop)
	<-loadDone

	// A real's server stops: its row turns red within the checker's timing
	// (delay_loop 1 s, connect_timeout 1 s, and a second to show it).
	require.NoError(t, topo.StopHTTP(1))
	stopped := time.Now()
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`tr[data-real="10.77.0.12:80"].down`)))
	t.Logf("the stopped real's row turned red %.1fs after its server stopped", time.Since(stopped).Seconds())
	assert.Less(t, time.Since(stopped), 6*time.Second)
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`getComputedStyle(document.querySelector('tr[data-real="10.77.0.12:80"] td')).backgroundColor`))
	require.NoError(t, err)
	assert.Equal(t, "rgb(255, 235, 233)", bg, "the down row is red")

	if out := os.Getenv("XLB_SCREENSHOT"); out != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(out, png, 0o644))
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, consoleErrors, "the page logged errors")
}
