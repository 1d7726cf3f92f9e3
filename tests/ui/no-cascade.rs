// One mistake in the impl; the rest of the program still type-checks against the stubs.
#[derive(Default)]
struct Lobby {
    games: u32,
}

struct Player;

#[repod::channel(state = Lobby)]
impl Player {
    #[action("")]
    fn bad(&mut self, ctx: &mut repod::Context<'_, Self>) {
        ctx.state_mut().games += 1;
    }

    fn helper(&self) -> u32 {
        1
    }
}

fn uses(p: &Player, m: Option<PlayerMessage>) -> u32 {
    let _ = <Player as repod::Channel>::ACTIONS;
    let _ = m;
    p.helper()
}

fn main() {}
