// The knowledge base under kb/ is compiled into the binary (include_dir!), which cargo does not track:
// tell it to rebuild when any of those files changes.
fn main() {
    println!("cargo:rerun-if-changed=kb");
    let mut stack = vec![std::path::PathBuf::from("kb")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            println!("cargo:rerun-if-changed={}", path.display());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
}
