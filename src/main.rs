fn main() {
    std::process::exit(gospy::cli::main());
}
