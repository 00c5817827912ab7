// mimalloc: svc serve and svc check allocate many short-lived small
// objects (requests, records, AST nodes); glibc's malloc spent 10-15% of
// their time in bench/run.sh.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    svc::commands::main()
}
