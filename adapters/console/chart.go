package console

import (
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// A small chart of the balance over the statement lines on the page,
// drawn on the server as SVG: a step line from the balance before the
// first line to the balance after the last, placed by time. Only numbers
// go into the SVG's attributes; the labels are text the template escapes.

// Chart geometry in SVG user units (the viewBox; CSS scales it).
const (
	chartWidth  = 600
	chartHeight = 160
	chartPad    = 8
)

type chart struct {
	Width, Height int
	Points        string // the polyline's points
	Area          string // the polygon under it
	Min, Max      string // the balance axis, formatted
	Start, End    string // the time axis, formatted
	Label         string // what a screen reader hears
}

func balanceChart(lines []ports.StatementLine, l localizer) *chart {
	if len(lines) == 0 {
		return nil
	}
	type point struct {
		at      time.Time
		balance int64
	}
	first := lines[0]
	opening := first.BalanceAfter.Minor() - first.Amount.Minor()
	pts := []point{{first.CreatedAt, opening}}
	for _, ln := range lines {
		pts = append(pts, point{ln.CreatedAt, ln.BalanceAfter.Minor()})
	}
	lo, hi := int64(0), opening
	for _, p := range pts {
		lo, hi = min(lo, p.balance), max(hi, p.balance)
	}
	if hi == lo {
		hi = lo + 1
	}
	t0, t1 := pts[0].at, pts[len(pts)-1].at
	span := t1.Sub(t0)
	x := func(i int, at time.Time) float64 {
		w := float64(chartWidth - 2*chartPad)
		if span <= 0 {
			return chartPad + w*float64(i)/float64(len(pts)-1)
		}
		return chartPad + w*float64(at.Sub(t0))/float64(span)
	}
	y := func(b int64) float64 {
		h := float64(chartHeight - 2*chartPad)
		return chartPad + h*(1-float64(b-lo)/float64(hi-lo))
	}
	var b strings.Builder
	coord := func(px, py float64) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(px, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(py, 'f', 1, 64))
	}
	for i, p := range pts {
		px := x(i, p.at)
		if i > 0 {
			coord(px, y(pts[i-1].balance)) // a step: the balance holds until the next posting
		}
		coord(px, y(p.balance))
	}
	line := b.String()
	cur := first.BalanceAfter.Currency()
	area := strconv.FormatFloat(x(0, t0), 'f', 1, 64) + "," + strconv.FormatFloat(y(lo), 'f', 1, 64) + " " + line + " " +
		strconv.FormatFloat(x(len(pts)-1, t1), 'f', 1, 64) + "," + strconv.FormatFloat(y(lo), 'f', 1, 64)
	last := lines[len(lines)-1].BalanceAfter
	return &chart{
		Width: chartWidth, Height: chartHeight, Points: line, Area: area,
		Min: l.Money(domain.NewAmount(lo, cur)), Max: l.Money(domain.NewAmount(hi, cur)),
		Start: l.Time(t0), End: l.Time(t1),
		Label: l.T("chart.label", l.Money(domain.NewAmount(opening, cur)), l.Money(last), l.Time(t0), l.Time(t1)),
	}
}
