package testkit

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// WaitReady asks base+"/readyz" with client, every poll, until it answers
// 200; after timeout it gives up with the last error or status.
func WaitReady(client *http.Client, base string, timeout, poll time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s (last: %v)", base, timeout, err)
		}
		time.Sleep(poll)
	}
}
