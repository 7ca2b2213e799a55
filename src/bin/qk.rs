//! `qk`: the command-line face of qkernels (see `qk --help`).

fn main() -> std::process::ExitCode {
    qkernels::cli::main()
}
