use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use gorescue::cli::{Cli, Command};
use gorescue::error::exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout: Box<dyn Write> =
        Box::new(io::BufWriter::with_capacity(1 << 16, io::stdout().lock()));
    let result = match &cli.command {
        Command::Annotate(a) => gorescue::offline::annotate(a.file.as_deref(), &a.output, stdout),
        Command::Strace(a) => gorescue::offline::strace(
            a.file.as_deref(),
            a.fd,
            &a.output,
            stdout,
            &mut io::stderr(),
        ),
        Command::Pid(a) => gorescue::live::pid(a, stdout),
        Command::Unit(a) => gorescue::unit_cmd::unit(a, stdout),
        Command::Journal(a) => gorescue::journal_cmd::journal(a, stdout),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "gorescue", &mut io::stdout());
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(tally) => {
            if tally.incomplete > 0 {
                eprintln!(
                    "gorescue: warning: {} of {} dumps are incomplete: goroutines or lines may be missing",
                    tally.incomplete, tally.dumps
                );
            }
            ExitCode::from(exit::OK)
        }
        Err(gorescue::Error::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("gorescue: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
