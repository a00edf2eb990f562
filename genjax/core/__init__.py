"""What the methods share, below them: the train step builder, the method contract, network building,
and the model families more than one paper builds on (the Gaussian autoencoder, the GAN of a generator
and a discriminator, BEGAN's energy-based autoencoder GAN). A method module imports from here, never
from another method."""
