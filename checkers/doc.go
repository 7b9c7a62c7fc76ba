// Package checkers decides whether a recorded history is correct: register
// histories are checked for linearizability with porcupine, key by key;
// set histories for lost and unexpected elements. For every
// non-linearizable key it finds a small witness, explains it in plain
// words and renders porcupine's HTML visualization.
//
// # Semantics
//
// The operation semantics are those of docs/history.md. An ok
// operation happened, with its result. A fail definitely did not take
// effect and is dropped, except a cas that failed with precondition-failed
// (an observation: at some moment during the cas the register did not hold
// its from value) or not-found (the key was absent). An info write or cas
// may take effect at any moment after its invocation, or never: porcupine
// sees it return after every other operation of its key. An invocation
// with no completion counts as info. Failed and info reads are dropped.
// A read of null means the key was absent. Values are arbitrary JSON,
// compared by canonical form (see Canonical). Nemesis operations are
// ignored. Keys are independent registers, all initially absent.
//
// # Verdict
//
// Check's time budget (Options.Timeout, default 60s) covers the whole
// check. Keys are checked by a pool of Options.Workers workers (default
// GOMAXPROCS); a key whose check does not finish within the budget, or is
// cut short by the context, is unknown, never valid. The overall verdict
// is invalid if any key is invalid, else unknown if any key is unknown,
// else valid. The set verdict is described at SetResult.
//
// # Witnesses
//
// A witness is a small sub-history of a failing key that is not
// linearizable by itself. A sub-history that merely loses the operations
// that explained a read would prove nothing, so witnesses are chosen among
// "closed" sub-histories (see witness.go): those that keep every operation
// that could have set the value an operation in them observed. A closed
// sub-history that is not linearizable proves that the whole history is
// not. Witnesses are 1-minimal (no single operation can be dropped) unless
// shrinking ran out of its budget (KeyFailure.Minimal). While shrinking, an
// info cas may be weakened to "may set its to value, or not", which only
// adds behaviours. The explanation's specific sentences ("... and no
// operation could have written 1 after it") are checked against the
// key's whole history; when none applies, the witness is listed
// operation by operation. Times are seconds since the test started.
//
// # results.json
//
// A Result encodes as the results.json of a run;
// /docs/results-json.md documents every field. In short:
//
//	{
//	  "valid": true | false | "unknown",
//	  "workload": "register" | "set",
//	  "ops": 12,            // events (history lines) checked
//	  "keys": 2,
//	  "error": "...",       // only when the check could not run
//	  "linear": {           // register workload
//	    "valid": false, "keys": 2, "valid_keys": 1, "invalid_keys": 1, "unknown_keys": 0,
//	    "operations": 5, "dropped": {"failed-read": 1, "info-read": 0, "failed": 0},
//	    "failures": [{"key": "k3", "operations": 3, "witness": [ops...], "witness_ops": 2,
//	                  "minimal": true, "explanation": "read of k3 by process 4 returned 1 at ...",
//	                  "impossible_index": 7,
//	                  "visualized_ops": 3, "visualization_note": "..."}],
//	    "unknown": [{"key": "k9", "operations": 812, "reason": "timed out after 60s ..."}]
//	  },
//	  "set": {              // set workload
//	    "valid": false, "attempted": 3, "acknowledged": 2, "failed": 0, "indeterminate": 1,
//	    "lost": 1, "unexpected": 0, "recovered": 1, "corrupted": 0, "never_read": 0,
//	    "never_read_acknowledged": 0, "explanation": "...",
//	    "lost_elements": [{"key": "s2", "value": 2, "add": "ok", "explanation": "..."}],
//	    "unexpected_elements": [], "corrupted_elements": [], "recovered_elements": [...],
//	    "never_read_elements": []
//	  },
//	  "stats": {"by_f": {"read": {"invoke": 3, "ok": 2, "fail": 1}}, "nemesis": 0,
//	            "dangling": 0, "unmatched": 0, "ignored": 0},
//	  "seconds": 0.004
//	}
//
// The visualization bytes (KeyFailure.Visualization) are not part of the
// JSON; reports write them to files of their own.
package checkers
