// Package monetix is the driving adapter for the Monetix (ECommPay Gate)
// payment platform: it serves the two endpoints the platform calls and turns
// them into calls on ports.Ledger.
//
//   - POST /v1/monetix/requests takes the platform's synchronous requests,
//     dispatched on "type": "verify" (does the customer account exist?) and
//     "check_deposit" (open a pending deposit, answer its payment_id). The
//     answer is always HTTP 200 with the result in "code": 0 ok, 400
//     signature invalid, 404 account does not exist, 500 any other error
//     with the reason in errors.message.
//   - POST /v1/monetix/callbacks takes the signed payment results and settles
//     deposits through ports.Ledger.SettleDeposit. It answers HTTP 200 only
//     after the ledger has durably stored the callback; 400 for anything that
//     cannot be authenticated or is malformed (nothing is stored); 5xx when
//     the store is unavailable, so the platform retries.
//
// The wire rules and the reasons behind each choice are written next to the
// code that applies them: authentication and body handling in handler.go, the
// verify / check_deposit answers in requests.go, callbacks in callbacks.go,
// the strict typed decoding in wire.go, status classification in status.go,
// error-to-code mapping in codes.go.
//
// # Payment methods are data
//
// A terminal payment method of the platform is a Method value: its name (the
// wire's payment_method / payment.method), its currency, its per-payment
// limits and the description answered to check_deposit. Config.Methods is the
// registry (default: Kassa24). Adding another terminal method of the same
// platform is one more Method value in that list — nothing else changes: the
// deposit's domain.Channel carries the method, so payment ids, clearing
// accounts and exceptions stay separated per method.
//
// Another payment platform is not a Method: it is a new adapter package
// beside this one (adapters/<platform>), with its own signature scheme and
// wire types, driving the same ports.Ledger use cases (VerifyCustomer,
// OpenDeposit, SettleDeposit) with its own domain.Channel provider name.
//
// # Projects
//
// A merchant may have several Monetix projects; each has its own id and
// secret key (TIYN_MONETIX_PROJECTS, see ParseProjects: keys percent-encoded
// in the line form; or a TOML file, see ParseProjectsTOML, with keys taken
// verbatim). Every request and callback is looked up by its project_id and
// verified with that project's key; the project id becomes
// domain.Channel.Project. A project may have its own per-payment limits,
// which narrow the method's and never widen them (Config.Validate).
//
// # Client helpers
//
// client.go holds what the other side of the wire needs — building signed
// requests and callbacks and reading answers — for the simulator and tests;
// bodywriter.go writes the same documents without marshalling, for the
// simulator's load (BodyWriter); gatewire.go is the Gate's side of the
// payment status.
package monetix
