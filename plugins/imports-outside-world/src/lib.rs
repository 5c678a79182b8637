//! Test fixture, not a plugin: a component that imports `acme:outside/network`, an interface
//! outside the `switchyard:plugin` world. The host must refuse it when loading, naming that
//! import, rather than fail at the first event.

wit_bindgen::generate!({
    inline: r"
        package acme:outside@0.1.0;

        interface network {
            /// What a plugin must never get: a way out of the sandbox.
            connect: func(address: string) -> bool;
        }

        world intruder {
            import network;
            export handle: func() -> bool;
        }
    ",
    world: "intruder",
});

struct Intruder;

impl Guest for Intruder {
    fn handle() -> bool {
        acme::outside::network::connect("127.0.0.1:9")
    }
}

export!(Intruder);
