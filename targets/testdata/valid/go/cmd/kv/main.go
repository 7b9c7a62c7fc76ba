// Command kv stands for a target's main package in the targets tests.
package main

func main() {}
