// Copyright The modelarts_exporter Authors
// SPDX-License-Identifier: Apache-2.0

// Command modelarts-simulator serves a fake ModelArts and IAM API, and the ECS
// metadata service's temporary credentials, on loopback for demos and
// end-to-end tests (package modelartstest as a program).
//
// Point an exporter at the printed endpoint, both as ModelArts and as IAM
// endpoint, with the printed project id and region, and with either the access
// key pair, the user, password and domain, or the printed metadata endpoint. The defaults are fake demo
// credentials (see --help); override them with the flags, and read the secret
// key from a file with --secret-key-file.
//
// The admin API under /-/sim/ (see package modelartstest) lists images, sets
// an image's status, injects and clears faults (kinds: see modelartstest.Fault)
// and expires tokens. It is unauthenticated: keep the simulator on a loopback
// address.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"

	"github.com/modelarts-exporter/modelarts_exporter/modelarts"
	"github.com/modelarts-exporter/modelarts_exporter/modelarts/modelartstest"
)

const programName = "modelarts-simulator"

// flags are the command line settings.
type flags struct {
	listenAddress  string
	projectID      string
	region         string
	accessKey      string
	secretKey      string
	secretKeyFile  string
	securityToken  string
	user           string
	password       string
	domain         string
	latency        time.Duration
	images         string
	seed           int64
	notFoundAs404  bool
	tokenTTL       time.Duration
	maxInFlight    int
	maxPageSize    int
	currentFromOne bool
	untypedListing string
	refuseWith403  bool
	temporaryTTL   time.Duration
	sessionToken   string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run serves until ctx is done; it returns the exit code.
func run(ctx context.Context, args []string, logOut io.Writer) int {
	logger := log.With(log.NewLogfmtLogger(log.NewSyncWriter(logOut)), "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller)
	f, err := parseFlags(args)
	if err != nil {
		level.Error(logger).Log("msg", "Invalid command line", "err", err)
		return 2
	}
	opts, err := f.options()
	if err != nil {
		level.Error(logger).Log("msg", "Invalid settings", "err", err)
		return 1
	}
	level.Info(logger).Log("msg", "Starting "+programName, "version", version.Info(), "build_context", version.BuildContext())
	if err := serve(ctx, logger, f, opts); err != nil {
		level.Error(logger).Log("msg", "Simulator failed", "err", err)
		return 1
	}
	return 0
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	app := kingpin.New(programName, "A fake ModelArts and IAM API for demos and tests of modelarts_exporter. "+
		"The admin API under /-/sim/ is unauthenticated: listen on loopback only.")
	app.Version(version.Print(programName))
	app.HelpFlag.Short('h')
	app.Flag("web.listen-address", "Address to listen on; port 0 picks a free port (the log says which).").
		Default("127.0.0.1:9714").StringVar(&f.listenAddress)
	app.Flag("project-id", "Id of the only project.").Default(modelartstest.DefaultProjectID).StringVar(&f.projectID)
	app.Flag("region", "Region, which is also the project's name.").Default(modelartstest.DefaultRegion).StringVar(&f.region)
	app.Flag("access-key", "Accepted access key (AK).").Default(modelartstest.DemoAccessKey).StringVar(&f.accessKey)
	app.Flag("secret-key", "Secret key (SK) of the access key; default: the fake demo key "+modelartstest.DemoSecretKey+".").
		Default(modelartstest.DemoSecretKey).StringVar(&f.secretKey)
	app.Flag("secret-key-file", "File holding the secret key; overrides --secret-key.").StringVar(&f.secretKeyFile)
	app.Flag("security-token", "Makes the access key a temporary one that needs this X-Security-Token.").StringVar(&f.securityToken)
	app.Flag("user", "IAM user that may obtain tokens.").Default(modelartstest.DemoUser).StringVar(&f.user)
	app.Flag("password", "Password of the IAM user; default: the fake demo password "+modelartstest.DemoPassword+".").
		Default(modelartstest.DemoPassword).StringVar(&f.password)
	app.Flag("domain", "Domain (account) name of the IAM user.").Default(modelartstest.DemoDomain).StringVar(&f.domain)
	app.Flag("latency", "Latency added to every API call.").Default("0s").DurationVar(&f.latency)
	app.Flag("images", `Initial images: "sample" (fixed sample images), "none", or a number N of generated images.`).
		Default("sample").StringVar(&f.images)
	app.Flag("seed", "Seed of the generated images (--images=N).").Default("1").Int64Var(&f.seed)
	app.Flag("not-found-as-404", "Answer a missing image with 404 instead of 400 ModelArts.6404.").BoolVar(&f.notFoundAs404)
	app.Flag("token-ttl", "Validity of issued IAM tokens.").Default(modelartstest.DefaultTokenTTL.String()).DurationVar(&f.tokenTTL)
	app.Flag("max-in-flight", "API calls served at once; more wait. 0: no cap.").Default("0").IntVar(&f.maxInFlight)
	app.Flag("max-page-size", "Cap on ListImage's limit.").Default(strconv.Itoa(modelartstest.DefaultMaxPageSize)).IntVar(&f.maxPageSize)
	app.Flag("current-from-one", `Number ListImage's "current" page from 1 instead of 0.`).BoolVar(&f.currentFromOne)
	app.Flag("untyped-listing", "What ListImage without type lists: BUILD_IN (the documented default) or ALL.").
		Envar(modelartstest.UntypedListingEnv).Default(modelartstest.UntypedBuildIn).
		EnumVar(&f.untypedListing, modelartstest.UntypedBuildIn, modelartstest.UntypedAll)
	app.Flag("refuse-with-403", "Answer a bad signature with 403 ModelArts.0206 and a bad token with 403 ModelArts.0203 instead of 401.").
		BoolVar(&f.refuseWith403)
	app.Flag("temporary-key-ttl", "Validity of the metadata service's temporary access keys; a new one is issued at half of it.").
		Default(modelartstest.DefaultTemporaryKeyTTL.String()).DurationVar(&f.temporaryTTL)
	app.Flag("metadata-session-token", "How the metadata service treats session tokens: optional, required, or 404 or 405 (a service without them).").
		Default(modelartstest.SessionTokenOptional).
		EnumVar(&f.sessionToken, modelartstest.SessionTokenOptional, modelartstest.SessionTokenRequired,
			modelartstest.SessionToken404, modelartstest.SessionToken405)
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	return f, nil
}

// options turns the flags into the simulator's options.
func (f *flags) options() (modelartstest.Options, error) {
	images, err := initialImages(f.images, f.seed)
	if err != nil {
		return modelartstest.Options{}, err
	}
	secret, err := f.secret()
	if err != nil {
		return modelartstest.Options{}, err
	}
	return modelartstest.Options{
		ProjectID:      f.projectID,
		Region:         f.region,
		Keys:           map[string]string{f.accessKey: secret},
		Users:          []modelartstest.User{{Domain: f.domain, Name: f.user, Password: f.password}},
		Images:         images,
		NotFoundAs404:  f.notFoundAs404,
		CurrentFromOne: f.currentFromOne,
		UntypedListing: f.untypedListing,
		RefuseWith403:  f.refuseWith403,
		TokenTTL:       f.tokenTTL,
		Latency:        f.latency,
		MaxInFlight:    f.maxInFlight,
		MaxPageSize:    f.maxPageSize,

		MetadataSessionToken: f.sessionToken,
		TemporaryKeyTTL:      f.temporaryTTL,
	}, nil
}

// secret is the secret key, from --secret-key-file when given.
func (f *flags) secret() (string, error) {
	if f.secretKeyFile == "" {
		return f.secretKey, nil
	}
	b, err := os.ReadFile(f.secretKeyFile)
	if err != nil {
		return "", fmt.Errorf("read secret key file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("secret key file %s is empty", f.secretKeyFile)
	}
	return secret, nil
}

// initialImages reads --images: "sample", "none" or a count.
func initialImages(spec string, seed int64) ([]modelarts.Image, error) {
	switch spec {
	case "sample":
		return modelartstest.SampleImages(), nil
	case "none":
		return []modelarts.Image{}, nil
	}
	n, err := strconv.Atoi(spec)
	if err != nil || n < 0 {
		return nil, fmt.Errorf(`--images: want "sample", "none" or a number of images, got %q`, spec)
	}
	return modelartstest.GenerateImages(n, seed), nil
}

// serve listens, says where, and serves until ctx is done.
func serve(ctx context.Context, logger log.Logger, f *flags, opts modelartstest.Options) error {
	sim := modelartstest.New(opts)
	if f.securityToken != "" {
		sim.AddKey(f.accessKey, opts.Keys[f.accessKey], f.securityToken)
	}
	ln, err := net.Listen("tcp", f.listenAddress)
	if err != nil {
		return err
	}
	endpoint := "http://" + ln.Addr().String()
	level.Info(logger).Log("msg", "Listening", "address", ln.Addr().String())
	level.Info(logger).Log("msg", "Point the exporter here",
		"endpoint", endpoint, "iam_endpoint", endpoint,
		"project_id", sim.ProjectID(), "region", sim.Region(),
		"access_key", f.accessKey, "user", f.user, "domain", f.domain,
		"metadata_endpoint", endpoint, "metadata_session_token", opts.MetadataSessionToken,
		"temporary_key_ttl", opts.TemporaryKeyTTL,
		"images", len(opts.Images), "untyped_listing", opts.UntypedListing, "refuse_with_403", opts.RefuseWith403,
		"admin_api", endpoint+"/-/sim/")

	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		sim.Close()
		return err
	case <-ctx.Done():
	}
	level.Info(logger).Log("msg", "Shutting down")
	sim.Close() // ends calls that wait (latency, delay faults)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
