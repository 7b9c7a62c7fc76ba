// Command selfprog is run by the SelfImage tests, built once with
// CGO_ENABLED=0 and once with CGO_ENABLED=1 (the net package then links
// against libc dynamically).
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	_, err := net.LookupPort("tcp", "80")
	fmt.Printf("selfprog ok args=%v lookup-err=%v\n", os.Args[1:], err != nil)
}
