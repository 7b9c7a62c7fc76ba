package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Image repositories used for the images this package builds. The tag of
// each image is the first 12 hex digits of the SHA-256 of its build context,
// so an unchanged input maps to an existing image and is not rebuilt.
const (
	// TargetRepoPrefix prefixes the images of targets (BuildGo, BuildDockerfile).
	TargetRepoPrefix = "jepsen-target/"
	// SelfRepoPrefix prefixes the images made by SelfImage.
	SelfRepoPrefix = "jepsen-self/"
)

// EnsureImage checks that ref exists in the local daemon. Nothing is ever
// pulled: no registry is reachable from the machines this runs on.
func EnsureImage(ctx context.Context, ref string) error {
	c, err := dockerClient()
	if err != nil {
		return err
	}
	if _, err := c.ImageInspect(ctx, ref); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("image %s is not in the local Docker daemon and no registry is reachable here; build it first with docker build -t %s .", ref, ref)
		}
		return fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return nil
}

// imageExists reports whether ref is present locally.
func imageExists(ctx context.Context, c *client.Client, ref string) (bool, error) {
	_, err := c.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

// BuildGo compiles the Go main package pkg (a path relative to dir, such as
// "./cmd/mykv" or ".") statically (CGO_ENABLED=0, -trimpath) for the
// daemon's platform and puts the binary at /target in a FROM scratch image.
// It returns the image reference, jepsen-target/NAME:HASH. If an image with
// that content already exists it is reused. A compile error is returned with
// the compiler's output.
func BuildGo(ctx context.Context, dir, pkg string) (string, error) {
	c, err := dockerClient()
	if err != nil {
		return "", err
	}
	ver, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("build go %s: docker daemon: %w", pkg, err)
	}
	tmp, err := os.MkdirTemp("", "jepsen-build-")
	if err != nil {
		return "", fmt.Errorf("build go %s: %w", pkg, err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "target")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, pkg)
	cmd.Dir = dir
	goarch := ver.Arch
	if goarch == "" {
		goarch = "amd64"
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, strings.TrimRight(string(out), "\n"))
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("build go %s: %w", pkg, err)
	}
	name := goImageName(dir, pkg)
	files := []ctxFile{
		{Name: "Dockerfile", Mode: 0o644, Data: []byte("FROM scratch\nCOPY target /target\nCMD [\"/target\"]\n")},
		{Name: "target", Mode: 0o755, Data: data},
	}
	return buildFiles(ctx, c, TargetRepoPrefix+name, "go", files)
}

// goImageName derives an image name from the package path (or the
// directory name for ".").
func goImageName(dir, pkg string) string {
	base := path.Base(filepath.ToSlash(pkg))
	if base == "." || base == "/" || base == "" || base == ".." {
		abs, err := filepath.Abs(filepath.Join(dir, pkg))
		if err == nil {
			base = filepath.Base(abs)
		}
	}
	return sanitizeRepo(base)
}

var repoBad = regexp.MustCompile(`[^a-z0-9._-]+`)

// sanitizeRepo turns s into a valid image repository path component.
func sanitizeRepo(s string) string {
	s = repoBad.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "._-")
	if s == "" {
		s = "target"
	}
	return s
}

// ctxFile is one regular file (or symlink when Link is set) of a build context.
type ctxFile struct {
	Name string
	Mode int64
	Data []byte
	Link string
}

// writeTar writes files, sorted by name, with fixed times, so that the same
// content always gives the same bytes. Parent directories are added.
func writeTar(w io.Writer, files []ctxFile) error {
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	epoch := time.Unix(0, 0)
	for _, f := range files {
		var parents []string
		for d := path.Dir(f.Name); d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			dirs[parents[i]] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parents[i] + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		h := &tar.Header{Name: f.Name, Mode: f.Mode, ModTime: epoch, Format: tar.FormatPAX}
		if f.Link != "" {
			h.Typeflag = tar.TypeSymlink
			h.Linkname = f.Link
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if f.Link == "" {
			if _, err := tw.Write(f.Data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// buildFiles builds an image from an in-memory context and tags it
// repo:HASH, reusing an existing image of that tag.
func buildFiles(ctx context.Context, c *client.Client, repo, kind string, files []ctxFile) (string, error) {
	var buf bytes.Buffer
	if err := writeTar(&buf, files); err != nil {
		return "", fmt.Errorf("build %s: context: %w", repo, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	ref := repo + ":" + hex.EncodeToString(sum[:])[:12]
	return ref, buildContext(ctx, c, ref, kind, "Dockerfile", &buf)
}

// buildContext builds the tar context r into image ref with the daemon's
// classic builder, unless ref already exists.
func buildContext(ctx context.Context, c *client.Client, ref, kind, dockerfile string, r io.Reader) error {
	ok, err := imageExists(ctx, c, ref)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	res, err := c.ImageBuild(ctx, r, client.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  dockerfile,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		Labels:      map[string]string{LabelImage: kind},
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", ref, err)
	}
	defer res.Body.Close()
	out, err := readBuildStream(res.Body)
	if err != nil {
		return fmt.Errorf("build image %s: %w\n%s", ref, err, strings.TrimRight(out, "\n"))
	}
	return nil
}

// buildMessage is one message of the daemon's JSON build output.
type buildMessage struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readBuildStream consumes the build output; it returns the text output and
// the build error, if any.
func readBuildStream(r io.Reader) (string, error) {
	var out strings.Builder
	dec := json.NewDecoder(r)
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out.String(), nil
			}
			return out.String(), fmt.Errorf("read build output: %w", err)
		}
		out.WriteString(m.Stream)
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return out.String(), errors.New(msg)
		}
	}
}

// BuildDockerfile builds dir with the local daemon's classic builder (no
// BuildKit frontend) using dockerfile (relative to dir; "" means
// "Dockerfile"). If the Dockerfile's leading comments hold a line
// "# jepsen-prepare: CMD", CMD is first run with sh -c in dir (to generate
// the context offline, e.g. copy a Debian package's binary and libraries);
// its failure fails the build with its last line of output. The context
// honours dir/.dockerignore. The image is tagged
// jepsen-target/NAME:HASH by the hash of the context and reused when the
// context did not change. A failed build returns the builder's output.
func BuildDockerfile(ctx context.Context, dir, dockerfile string) (string, error) {
	c, err := dockerClient()
	if err != nil {
		return "", err
	}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	df, err := os.ReadFile(filepath.Join(dir, dockerfile))
	if err != nil {
		return "", fmt.Errorf("build %s: %w", dir, err)
	}
	if cmd := PrepareCommand(df); cmd != "" {
		if err := runPrepare(ctx, dir, dockerfile, cmd); err != nil {
			return "", err
		}
	}
	tmp, err := os.CreateTemp("", "jepsen-context-*.tar")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	io.WriteString(h, filepath.ToSlash(dockerfile)+"\x00")
	if err := tarDir(io.MultiWriter(tmp, h), dir, filepath.ToSlash(dockerfile)); err != nil {
		return "", fmt.Errorf("build %s: context: %w", dir, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("build %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", dir, err)
	}
	ref := TargetRepoPrefix + sanitizeRepo(filepath.Base(abs)) + ":" + hex.EncodeToString(h.Sum(nil))[:12]
	if err := buildContext(ctx, c, ref, "dockerfile", filepath.ToSlash(dockerfile), tmp); err != nil {
		return "", err
	}
	return ref, nil
}

// tarDir writes the build context of dir to w, honouring .dockerignore
// (the Dockerfile and .dockerignore are always included, as the docker CLI
// does). Entries are sorted and times fixed so the bytes depend only on
// names, modes and contents.
func tarDir(w io.Writer, dir, dockerfile string) error {
	var pm *patternmatcher.PatternMatcher
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
		if pm, err = patternmatcher.New(patterns); err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
	}
	keep := map[string]bool{dockerfile: true, ".dockerignore": true}
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if pm != nil && !keep[rel] {
			skip, err := pm.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if skip {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = epoch, time.Time{}, time.Time{}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// SelfImage returns an image holding binary (default: the running
// executable) at /jepsen, tagged jepsen-self/NAME:HASH. If the binary is
// dynamically linked, its ELF interpreter and the shared libraries it needs
// (resolved as ld.so would, recursively) are copied in at the same paths,
// so a cgo binary runs in the scratch image too.
func SelfImage(ctx context.Context, binary string) (string, error) {
	c, err := dockerClient()
	if err != nil {
		return "", err
	}
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return "", fmt.Errorf("self image: %w", err)
		}
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		return "", fmt.Errorf("self image: %w", err)
	}
	deps, err := elfDeps(binary)
	if err != nil {
		return "", fmt.Errorf("self image %s: %w", binary, err)
	}
	dockerfile := "FROM scratch\nCOPY rootfs/ /\n"
	if len(deps) > 1 {
		// Without /etc/ld.so.cache the loader only searches its built-in
		// directories; name the ones the libraries were found in.
		var dirs []string
		seen := map[string]bool{}
		for _, d := range deps[1:] {
			if dir := filepath.Dir(d); !seen[dir] {
				seen[dir] = true
				dirs = append(dirs, dir)
			}
		}
		dockerfile += "ENV LD_LIBRARY_PATH=" + strings.Join(dirs, ":") + "\n"
	}
	dockerfile += "CMD [\"/jepsen\"]\n"
	files := []ctxFile{
		{Name: "Dockerfile", Mode: 0o644, Data: []byte(dockerfile)},
		{Name: "rootfs/jepsen", Mode: 0o755, Data: data},
	}
	for _, d := range deps {
		b, err := os.ReadFile(d)
		if err != nil {
			return "", fmt.Errorf("self image %s: library: %w", binary, err)
		}
		files = append(files, ctxFile{Name: "rootfs" + d, Mode: 0o755, Data: b})
	}
	return buildFiles(ctx, c, SelfRepoPrefix+sanitizeRepo(filepath.Base(binary)), "self", files)
}

// prepareDirective starts the Dockerfile comment naming a command to run
// before the build (see BuildDockerfile).
const prepareDirective = "jepsen-prepare:"

// PrepareCommand returns CMD of a "# jepsen-prepare: CMD" line among the
// leading comment (and blank) lines of a Dockerfile, or "".
func PrepareCommand(dockerfile []byte) string {
	for _, line := range strings.Split(string(dockerfile), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "#") {
			return ""
		}
		if c, ok := strings.CutPrefix(strings.TrimSpace(line[1:]), prepareDirective); ok {
			return strings.TrimSpace(c)
		}
	}
	return ""
}

// runPrepare runs a Dockerfile's prepare command in dir.
func runPrepare(ctx context.Context, dir, dockerfile, command string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	last := ""
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			last = l
		}
	}
	if last == "" {
		last = err.Error()
	}
	return fmt.Errorf("build %s: %q (the %s line of %s) failed: %s", dir, command, prepareDirective, dockerfile, last)
}
