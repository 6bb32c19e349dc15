package platformsim

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tiyn/tiyn/tools/platformsim/platform"
)

// The simulator as the platform's Gate: the record of the payments it
// makes (platform.Payments), written as it plays them whether or not it
// delivers their callbacks, and one Gate server per listener answering
// from it.

// Bounds of the Gate servers.
const (
	gateReadTimeout = 10 * time.Second
	// gateStopTimeout bounds the wait for requests in flight when the run
	// ends; then connections are closed (a connection a client opened and
	// never used would otherwise hold Shutdown for 5 s).
	gateStopTimeout = time.Second
)

// gateServer is the Gate on one listener.
type gateServer struct {
	addr string
	gate *platform.Gate
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// newGates makes the record and a Gate per listener (Config.GateListeners).
func (s *sim) newGates() error {
	secrets := map[string][]byte{strconv.FormatInt(s.cfg.ProjectID, 10): s.cfg.Secret}
	for _, ln := range s.cfg.GateListeners {
		g, err := platform.NewGate(platform.GateConfig{Payments: s.record, Secrets: secrets, Method: simMethod.Name})
		if err != nil {
			return err
		}
		s.gates = append(s.gates, &gateServer{
			addr: ln.Addr().String(), gate: g, ln: ln, done: make(chan struct{}),
			srv: &http.Server{
				Handler: s.platformHandler(g), ReadHeaderTimeout: gateReadTimeout, ReadTimeout: gateReadTimeout, WriteTimeout: gateReadTimeout,
				IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10, ErrorLog: log.New(io.Discard, "", 0),
			},
		})
	}
	return nil
}

// startGates serves every Gate until stopGates.
func (s *sim) startGates() {
	for _, g := range s.gates {
		go func() {
			defer close(g.done)
			_ = g.srv.Serve(g.ln) // returns when stopped
		}()
	}
}

// stopGates shuts the Gates down (requests in flight get their answer,
// within gateStopTimeout).
func (s *sim) stopGates() {
	var wg sync.WaitGroup
	for _, g := range s.gates {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), gateStopTimeout)
			defer cancel()
			if err := g.srv.Shutdown(ctx); err != nil {
				_ = g.srv.Close()
			}
			<-g.done
		})
	}
	wg.Wait()
}

// closeListeners closes what Run was given, whatever happened (a listener
// already closed by its server's shutdown answers an error, ignored).
func closeListeners(lns []net.Listener) {
	for _, ln := range lns {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// platformStatus is the status of the record's operation a callback
// kind reports.
func (k cbKind) platformStatus() platform.Status {
	switch k {
	case cbDecline:
		return platform.StatusDecline
	case cbSuccess:
		return platform.StatusSuccess
	}
	return platform.StatusProcessing
}

// recordOpen records a payment the platform accepted (its check_deposit
// was answered with paymentID): its sale operation is processing.
func (s *sim) recordOpen(p *plan, paymentID string) {
	if s.record == nil {
		return
	}
	op := s.opBase + p.index*opsPerPayment + 1
	if err := s.record.Open(s.cfg.ProjectID, paymentID, op, p.amount, simCurrency, time.Now()); err != nil {
		s.errs.add("the platform's record: " + err.Error())
	}
}

// recordStep changes the record as the callback st reports, before the
// callback is sent (or dropped).
func (s *sim) recordStep(paymentID string, st step) {
	if s.record == nil {
		return
	}
	if err := s.record.Update(paymentID, st.op, st.kind.platformStatus(), time.Now()); err != nil {
		s.errs.add("the platform's record: " + err.Error())
	}
}

// GateReport is what one Gate listener saw.
type GateReport struct {
	Addr string `json:"addr"`
	// Requests is every request received; Answered those answered with a
	// payment, NotFound about a payment not on record, Refused the rest.
	Requests int64 `json:"requests"`
	Answered int64 `json:"answered"`
	NotFound int64 `json:"not_found"`
	Refused  int64 `json:"refused"`
	// PeakPerSecond is the most requests within any one second (a
	// sliding window): compare it with TIYN_STATUS_POLL_RATE. With
	// PeakSaturated it is a lower bound.
	PeakPerSecond int  `json:"peak_per_second"`
	PeakSaturated bool `json:"peak_saturated,omitempty"`
}

func (s *sim) gateReports() []GateReport {
	out := make([]GateReport, 0, len(s.gates))
	for _, g := range s.gates {
		st := g.gate.Stats()
		out = append(out, GateReport{Addr: g.addr, Requests: st.Requests, Answered: st.Answered, NotFound: st.NotFound,
			Refused: st.Refused, PeakPerSecond: st.PeakPerSecond, PeakSaturated: st.PeakSaturated})
	}
	return out
}
