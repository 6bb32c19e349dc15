package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// MaxCloseReasonLen bounds an override's reason.
const MaxCloseReasonLen = domain.MaxNoteLen

// CloseDay freezes a business day (see ports.Reconciler). In one
// transaction it checks the rules — the day has ended in the business
// zone, is not closed yet, and its latest finished reconciliation has no
// open break (or the operator overrides with a reason) — and has the store
// lock out concurrent ledger writes, compute the day's statement, store it
// with the record and freeze the ledger up to the day's end. The close is
// in the audit trail, with the override's reason.
//
// A later correction lands in the next open day: every ledger row takes
// its insertion time from the clock, which is past the closed day, and the
// store refuses any row dated inside a closed day (ports.ErrDayClosed), so
// nothing can be backdated into it.
func (s *Service) CloseDay(ctx context.Context, cmd ports.CloseDay) (ports.DayRecord, error) {
	if cmd.Day.IsZero() {
		return ports.DayRecord{}, fmt.Errorf("%w: closing needs a day", domain.ErrInvalidInput)
	}
	if cmd.Day.Location().String() != s.zone.String() {
		return ports.DayRecord{}, fmt.Errorf("%w: day %s is in %s, the business zone is %s", domain.ErrInvalidInput, cmd.Day, cmd.Day.Location(), s.zone)
	}
	if cmd.By == "" {
		return ports.DayRecord{}, fmt.Errorf("%w: closing needs who closes", domain.ErrInvalidInput)
	}
	if cmd.Override {
		if err := domain.ValidateNote(cmd.Reason); err != nil {
			return ports.DayRecord{}, fmt.Errorf("an override needs a reason: %w", err)
		}
	} else if cmd.Reason != "" {
		return ports.DayRecord{}, fmt.Errorf("%w: a reason is only taken with an override", domain.ErrInvalidInput)
	}
	var rec ports.DayRecord
	err := s.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
		now := s.clock.Now()
		if !cmd.Day.Ended(now) {
			return fmt.Errorf("%w: business day %s ends at %s", ports.ErrDayNotEnded, cmd.Day, cmd.Day.End().Format("2006-01-02 15:04:05 -07:00"))
		}
		if _, err := tx.DayRecord(ctx, cmd.Day); err == nil {
			return fmt.Errorf("%w: %s", ports.ErrDayClosed, cmd.Day)
		} else if !errors.Is(err, ports.ErrNotFound) {
			return err
		}
		rec = ports.DayRecord{Day: cmd.Day, ClosedAt: now, ClosedBy: cmd.By, Override: cmd.Override, Reason: cmd.Reason}
		run, err := tx.LatestReconRun(ctx, cmd.Day, ports.RunFinished)
		switch {
		case errors.Is(err, ports.ErrNotFound):
			if !cmd.Override {
				return fmt.Errorf("%w: business day %s has no finished reconciliation", ports.ErrOpenBreaks, cmd.Day)
			}
		case err != nil:
			return err
		default:
			rec.RunID = run.ID
			if rec.OpenBreaks, err = tx.OpenBreaks(ctx, run.ID); err != nil {
				return err
			}
			if rec.OpenBreaks > 0 && !cmd.Override {
				return fmt.Errorf("%w: run %s of %s has %d breaks whose exceptions are open", ports.ErrOpenBreaks, run.ID, cmd.Day, rec.OpenBreaks)
			}
		}
		if rec, err = tx.CloseDay(ctx, rec); err != nil {
			if errors.Is(err, ports.ErrConflict) {
				return fmt.Errorf("%w: %s", ports.ErrDayClosed, cmd.Day)
			}
			return err
		}
		detail := fmt.Sprintf("run %s, %d open breaks, %d statement lines", orNone(rec.RunID), rec.OpenBreaks, rec.Accounts)
		if cmd.Override {
			detail = "override: " + cmd.Reason + "; " + detail
		}
		return tx.AppendAudit(ctx, ports.AuditEntry{Actor: cmd.By, Action: "close_day", Subject: cmd.Day.String(), Detail: detail, At: now})
	})
	if err != nil {
		return ports.DayRecord{}, err
	}
	return rec, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Day returns a closed day's record and a page of its statement
// (ErrNotFound when the day is not closed).
func (s *Service) Day(ctx context.Context, q ports.DayBalanceQuery) (ports.DayView, error) {
	if q.Day.IsZero() {
		return ports.DayView{}, fmt.Errorf("%w: which day?", domain.ErrInvalidInput)
	}
	rec, err := s.store.DayRecord(ctx, q.Day)
	if err != nil {
		return ports.DayView{}, err
	}
	q.Limit = ports.ClampLimit(q.Limit, 100)
	bal, err := s.store.ListDayBalances(ctx, q)
	if err != nil {
		return ports.DayView{}, err
	}
	return ports.DayView{Record: rec, Balances: bal}, nil
}
