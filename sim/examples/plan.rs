//! Scratch.
fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("n"))
        .collect();
    let config = ferry_sim::sockets::SocketConfig::new(args[1] as u32, args[0]);
    for &c in &args[2..] {
        let plan = ferry_sim::plan::draw_plan(args[0], c as u32, false, &config.plan);
        for (i, op) in plan.iter().enumerate() {
            println!("c{c} step {i}: {op:?}");
        }
    }
}
