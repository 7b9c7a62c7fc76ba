package durafs

import (
	"strings"
	"testing"
)

const sampleMountinfo = `22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/a
35 22 0:33 / /data rw,relatime master:1 - ext4 /dev/vda1 rw
36 22 0:34 / /my\040data rw - tmpfs tmpfs rw
40 35 0:45 / /data rw,nosuid,nodev,relatime - fuse.durafs durafs rw,user_id=0,group_id=0,allow_other
bad line
41 22 0:46 / /half rw -
`

func TestMountType(t *testing.T) {
	tests := []struct{ dir, want string }{
		{"/data", "fuse.durafs"}, // the topmost of two
		{"/", "overlay"},
		{"/my data", "tmpfs"}, // octal escape
		{"/half", ""},         // no type after the separator
		{"/nothing", ""},
	}
	for _, tt := range tests {
		if got := MountType(sampleMountinfo, tt.dir); got != tt.want {
			t.Errorf("MountType(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
}

func FuzzMountType(f *testing.F) {
	f.Add(sampleMountinfo, "/data")
	f.Add(`1 2 3:4 / /a\1 rw - x y z`, `/a\1`)
	f.Fuzz(func(t *testing.T, info, dir string) {
		got := MountType(info, dir)
		if got != "" && !strings.Contains(info, got) {
			t.Fatalf("MountType returned %q, which is not in the input", got)
		}
		_ = unescapeMountinfo(dir)
	})
}
