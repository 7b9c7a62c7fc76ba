//go:build !race

package checkers

// raceEnabled is true when the tests run under the race detector, which
// slows them several times over.
const raceEnabled = false
