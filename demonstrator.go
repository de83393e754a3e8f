package main

import (
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

func newDemonstratorCmd(_, stderr io.Writer) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "demonstrator",
		Short: "Run only the built-in GP Connect practices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(viper.New(), file, cmd.Flags())
			if err != nil {
				return err
			}
			log, err := newLogger(cfg.Log, stderr)
			if err != nil {
				return err
			}
			table, err := cfg.Registry.Build()
			if err != nil {
				return err
			}
			if err := cfg.validatePractices(table); err != nil {
				return err
			}
			st := &stack{log: log, errc: make(chan error, 1)}
			if err := ensurePKI(cfg, log); err != nil {
				return err
			}
			if err := st.startDemonstrator(cfg, table); err != nil {
				return err
			}
			return wait(cmd.Context(), st)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file merged over the embedded default")
	cmd.Flags().String("listen", "", "the demonstrator's listen address (demonstrator.listen)")
	bindFlag(cmd.Flags(), "listen", "demonstrator.listen")
	return cmd
}
