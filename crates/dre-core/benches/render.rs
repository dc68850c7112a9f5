//! Time to render the original's default cube (2730 models of 128x128) on 1 and 2 threads.
//! `cargo bench -p dre-core --bench render`

use dre::{default_grid, render_cube, RadiusConvention};
use std::time::Instant;

fn main() {
    let grid = default_grid();
    println!(
        "default cube: {} models of {}x{}",
        grid.n_models(),
        grid.boxsize,
        grid.boxsize
    );
    println!("{:>8} {:>10} {:>14}", "threads", "seconds", "models/s");
    let mut first: Option<Vec<f32>> = None;
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        let start = Instant::now();
        let cube = pool
            .install(|| render_cube(&grid, RadiusConvention::Major, &|| ()))
            .expect("render");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{threads:>8} {secs:>10.2} {:>14.0}",
            grid.n_models() as f64 / secs
        );
        match &first {
            None => first = Some(cube.data),
            Some(d) => assert!(*d == cube.data, "thread count changed the cube"),
        }
    }
}
