// Command broken does not compile, on purpose: the tests check that BuildGo
// reports the compiler's lines.
package main

func main() {
	var x int = "not an int"
	undefinedFunction(x)
}
