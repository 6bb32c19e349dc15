// Package domain is Tiyn's pure core: money in minor units, customer
// accounts, deposits and their state machine, double-entry transfers and the
// exceptions an operator must look at.
//
// It does no I/O and never reads the clock: time is passed in. It imports the
// standard library and shopspring/decimal only (the layer check in the
// Makefile and tests/arch enforce that).
package domain
