// Command sspemu is a local Spine Secure Proxy for GP Connect: consumers
// talk to it as they will to the real SSP and get the same checks, the same
// error bodies and an audit trail that explains every decision.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "sspemu:", err)
		}
		os.Exit(1)
	}
}

// errReported ends a command whose problems are already printed.
var errReported = errors.New("problems reported")

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	serve := newServeCmd(stdout, stderr)
	root := &cobra.Command{
		Use:   "sspemu",
		Short: "A local Spine Secure Proxy for GP Connect",
		Long: "sspemu is a local emulator of the NHS Spine Secure Proxy for GP Connect 1.2.7.\n" +
			"With no command it runs serve: the SSP on https://localhost:8443 and a built-in\n" +
			"GP Connect provider on https://localhost:9443, with a dev PKI in .sspemu/pki.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          serve.RunE,
	}
	root.Flags().AddFlagSet(serve.Flags())
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serve,
		newCertsCmd(stdout),
		newTokenCmd(stdout),
		newCheckConfigCmd(stdout),
		newAuditCmd(stdout),
		newDemonstratorCmd(stdout, stderr),
		newLookupCmd(stdout),
		newReportCmd(stdout),
	)
	return root
}
