//! The ports of a `weed mini`: every listener's port picked free and passed explicitly, so that
//! several instances run side by side.

use std::io;
use std::net::TcpListener;
use std::path::Path;

/// The ports of every listener of `weed mini`.
pub(super) struct Ports {
    master: [u16; 2],
    volume: [u16; 2],
    filer: [u16; 2],
    pub(super) s3: u16,
    s3_grpc: u16,
    /// The admin port; its gRPC port is this plus 10000, because the embedded worker dials
    /// that whatever `-admin.port.grpc` says.
    admin: u16,
}

impl Ports {
    /// Picks distinct free ports by holding listeners on port 0 until all are chosen.
    pub(super) fn pick() -> io::Result<Ports> {
        let mut held = Vec::new();
        let mut next = || -> io::Result<u16> {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            held.push(listener);
            Ok(port)
        };
        let master = [next()?, next()?];
        let volume = [next()?, next()?];
        let filer = [next()?, next()?];
        let s3 = next()?;
        let s3_grpc = next()?;
        let mut admin = None;
        for _ in 0..100 {
            let port = next()?;
            if let Some(grpc) = port.checked_add(10000)
                && let Ok(listener) = TcpListener::bind(("127.0.0.1", grpc))
            {
                held.push(listener);
                admin = Some(port);
                break;
            }
        }
        let admin = admin.ok_or_else(|| io::Error::other("found no free pair of admin ports"))?;
        Ok(Ports {
            master,
            volume,
            filer,
            s3,
            s3_grpc,
            admin,
        })
    }

    /// The command-line flags that set every port (and the local sockets, into `dir`).
    pub(super) fn flags(&self, dir: &Path) -> Vec<String> {
        vec![
            format!("-master.port={}", self.master[0]),
            format!("-master.port.grpc={}", self.master[1]),
            format!("-volume.port={}", self.volume[0]),
            format!("-volume.port.grpc={}", self.volume[1]),
            format!("-filer.port={}", self.filer[0]),
            format!("-filer.port.grpc={}", self.filer[1]),
            format!("-s3.port={}", self.s3),
            format!("-s3.port.grpc={}", self.s3_grpc),
            format!("-admin.port={}", self.admin),
            format!("-admin.port.grpc={}", u32::from(self.admin) + 10000),
            format!("-filer.localSocket={}", dir.join("filer.sock").display()),
            format!("-s3.localSocket={}", dir.join("s3.sock").display()),
        ]
    }
}
