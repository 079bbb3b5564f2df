package dev.blockserve.config;

import java.nio.file.Path;

/** The model being served: the name clients use and the directory its files are in. */
public record ServedModel(String name, Path directory) {
}
