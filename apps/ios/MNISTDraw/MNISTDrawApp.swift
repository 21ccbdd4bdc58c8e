import SwiftUI

@main
struct MNISTDrawApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
