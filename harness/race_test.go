//go:build race

package harness

// raceEnabled is true when the tests run under the race detector, which
// slows them several times over.
const raceEnabled = true
