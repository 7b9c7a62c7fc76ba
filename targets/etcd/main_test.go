package main

import "testing"

func TestInitialCluster(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
		ok   bool
	}{
		{"from JEPSEN_NODES", nil, map[string]string{"JEPSEN_NODES": "n1,n2,n3"}, "n1=http://n1:2380,n2=http://n2:2380,n3=http://n3:2380", true},
		{"one node", nil, map[string]string{"JEPSEN_NODES": "n1"}, "n1=http://n1:2380", true},
		{"peer port", nil, map[string]string{"JEPSEN_NODES": "n1,n2", "JEPSEN_ETCD_PEER_PORT": "12380"}, "n1=http://n1:12380,n2=http://n2:12380", true},
		{"flag given", []string{"--name", "n1", "--initial-cluster", "a=http://a:2380"}, map[string]string{"JEPSEN_NODES": "n1"}, "", false},
		{"flag= given", []string{"--initial-cluster=a=http://a:2380"}, map[string]string{"JEPSEN_NODES": "n1"}, "", false},
		{"env given", nil, map[string]string{"JEPSEN_NODES": "n1", "ETCD_INITIAL_CLUSTER": "x"}, "", false},
		{"no nodes", nil, nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := initialCluster(tc.args, func(k string) string { return tc.env[k] })
			if got != tc.want || ok != tc.ok {
				t.Errorf("initialCluster = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
