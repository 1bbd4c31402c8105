//! Pool hand-offs of a decode step, per family
//! (`eddy::parallel::handoffs`). One test in this binary: the counter is
//! process-wide. `--nocapture` prints each family's count at two threads.

use eddy::{Model, Session, Workers};
use eddy_cli::random::{build, Storage};
use eddy_cli::recipe::Recipe;
use eddy_cli::shapes::small_shapes;

/// Hand-offs of the second step of `model` on `threads` threads.
fn step_handoffs(model: &mut Model<'_>, threads: usize) -> usize {
    model.set_workers(Workers::threads(threads).unwrap());
    let mut session = Session::new_owned(model);
    session.step(1).unwrap();
    let before = eddy::parallel::handoffs();
    session.step(2).unwrap();
    eddy::parallel::handoffs() - before
}

#[test]
fn decode_steps_hand_off_only_with_a_pool() {
    let w2a8 = Storage::Recipe(Recipe::preset("w2a8").unwrap());
    for (family, shape) in small_shapes() {
        let built = build(&shape.plan().unwrap(), &w2a8, 3).unwrap();
        let mut model = Model::from_bytes(built.bytes.as_slice()).unwrap();
        assert_eq!(step_handoffs(&mut model, 1), 0, "{family}: one thread handed work off");
        let two = step_handoffs(&mut model, 2);
        assert!(two > 0, "{family}: two threads never used the pool");
        println!("{family}: {two} hand-offs per step at 2 threads");
    }
}
