// Package reports turns a run directory of the store (README.md, "What a
// run leaves behind") into things people and CI systems read: a
// self-contained report.html with the verdict, the counterexamples, plots
// and node logs (Write), a JUnit XML file (WriteJUnit), and a small web UI
// over the whole store (NewBrowser).
//
// It reads what the harness leaves in a run directory: test.json (Meta),
// history.jsonl, nodes/*.log, and takes the checker's result in memory,
// because porcupine's visualizations are not part of results.json. Rebuild
// regenerates a report from the files alone by checking the history again.
//
// Every value that comes from the target or from the history reaches HTML
// only through html/template, and report.html carries a Content Security
// Policy that forbids scripts and network requests, so a store that returns
// "<script>" cannot run code in a report.
package reports
