package browser_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// tab is one browser (a fresh profile) with one tab, and every error its
// pages reported to the console.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string // screenshots

	mu   sync.Mutex
	errs []string
}

// newTab starts chromium headless with the flags a locked-down machine
// needs (no sandbox as root, no GPU, no QUIC, and nothing that calls home:
// no first-run, background networking, component updates or sync) and a
// profile of its own, and opens one tab.
func newTab(t *testing.T, s *server) *tab {
	t.Helper()
	exe := browserPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	tb := &tab{t: t, base: s.base, dir: screenshotDir(t)}
	tctx, cancelTab := chromedp.NewContext(alloc, chromedp.WithListener(tb.listen))
	t.Cleanup(cancelTab)
	tb.ctx = tctx
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	t.Cleanup(tb.noConsoleErrors)
	return tb
}

// listen keeps what the page's console reports as an error: an uncaught
// exception, console.error, and the browser's own error entries (a
// resource that failed to load, a Content-Security-Policy violation).
func (tb *tab) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		if d := ev.ExceptionDetails; d != nil {
			msg = "exception: " + d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
		}
	case *log.EventEntryAdded:
		if e := ev.Entry; e != nil && e.Level == log.EntryLevelError {
			msg = "log (" + string(e.Source) + "): " + e.Text + " " + e.URL
		}
	}
	if msg != "" {
		tb.mu.Lock()
		tb.errs = append(tb.errs, msg)
		tb.mu.Unlock()
	}
}

// noConsoleErrors fails the test on any error a page reported.
func (tb *tab) noConsoleErrors() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.errs) > 0 {
		tb.t.Errorf("the browser's console reported %d error(s):\n%s", len(tb.errs), strings.Join(tb.errs, "\n"))
	}
}

// checkConsole fails now if a page reported an error (so the failure
// points at the step).
func (tb *tab) checkConsole(step string) {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.errs) > 0 {
		tb.t.Fatalf("%s: the browser's console reported:\n%s", step, strings.Join(tb.errs, "\n"))
	}
}

func (tb *tab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", step, err)
	}
	tb.checkConsole(step)
}

// open navigates to a console path and waits for its main content.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.base+path), chromedp.WaitVisible(chromedp.CSS("main")))
}

// submit triggers a navigation (a click on a button or a link, Enter in a
// field) and waits for the next page; it returns that page's HTTP status.
func (tb *tab) submit(step string, action chromedp.Action[chromedp.Void]) int64 {
	tb.t.Helper()
	resp, err := chromedp.RunResponse(tb.ctx, action)
	if err != nil {
		tb.t.Fatalf("%s: %v", step, err)
	}
	if err := chromedp.Do(tb.ctx, chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		tb.t.Fatalf("%s: %v", step, err)
	}
	tb.checkConsole(step)
	if resp == nil {
		return 0
	}
	return resp.Status
}

// click clicks the first element matching a CSS selector and waits for the
// page it leads to.
func (tb *tab) click(sel string) int64 {
	tb.t.Helper()
	return tb.submit("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// typeInto types text into a field (keyboard events, as a person would).
func (tb *tab) typeInto(sel, text string) {
	tb.t.Helper()
	tb.do("type into "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// text returns the visible text of the first element matching sel.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// location is the tab's URL, without the server's base.
func (tb *tab) location() string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		tb.t.Fatal(err)
	}
	return strings.TrimPrefix(s, tb.base)
}

// eval evaluates a DevTools expression (not a page script: the page runs
// none, and its CSP allows none).
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// mainHas fails unless the page's main content shows every want (no-break
// spaces compared as spaces); it returns the text as shown.
func (tb *tab) mainHas(step string, want ...string) string {
	tb.t.Helper()
	got := tb.text("main")
	for _, w := range want {
		if !strings.Contains(plain(got), plain(w)) {
			tb.t.Fatalf("%s: the page does not show %q; it shows:\n%s", step, w, got)
		}
	}
	return got
}

// shot saves a screenshot of the whole page as NAME.png.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(tb.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot %s (%d KiB)", path, len(png)/1024)
}

// login logs in with a token using the keyboard only: the token field has
// the focus, the token is typed, Enter submits.
func (tb *tab) login(token string) {
	tb.t.Helper()
	tb.open("/console/login")
	focused := eval[string](tb, `document.activeElement && document.activeElement.id`)
	if focused != "token" {
		tb.t.Fatalf("the login page does not focus the token field (focus on %q)", focused)
	}
	if st := tb.submit("log in", chromedp.KeyEvent(token+"\r")); st != 200 {
		tb.t.Fatalf("log in: status %d at %s", st, tb.location())
	}
	if loc := tb.location(); !strings.HasPrefix(loc, "/console/") || strings.HasPrefix(loc, "/console/login") {
		tb.t.Fatalf("after login at %s:\n%s", loc, tb.text("main"))
	}
}

// logout presses the header's log-out button.
func (tb *tab) logout() {
	tb.t.Helper()
	tb.click(`form[action="/console/logout"] button`)
	if loc := tb.location(); !strings.HasPrefix(loc, "/console/login") {
		tb.t.Fatalf("after logout at %s", loc)
	}
}

// plain folds the no-break spaces of formatted amounts into spaces.
func plain(s string) string {
	return strings.NewReplacer("\u00a0", " ", "\u202f", " ").Replace(s)
}

// chromedpKey sends keys to the focused element.
func chromedpKey(keys string) chromedp.Action[chromedp.Void] { return chromedp.KeyEvent(keys) }

// chromedpClear empties a field.
func chromedpClear(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Clear(chromedp.CSS(sel))
}
